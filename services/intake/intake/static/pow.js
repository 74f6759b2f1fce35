/* Proof of work for the reporter form (same origin, no third-party code).
 * Fetches a challenge from /api/v1/pow as soon as the page opens and solves it in a Web Worker
 * (pow-worker.js) while the reporter types: a decimal nonce such that
 * SHA-256(challenge + ":" + nonce) starts with `bits` zero bits. On submit the form goes to
 * its action with ?pow=<challenge>:<nonce>. SHA-256 is implemented here because
 * crypto.subtle exists only on HTTPS or localhost, and is async per hash.
 * Without JavaScript the form posts directly: that needs WBS_POW_BITS=0. */
(function (root) {
  "use strict";
  var K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2];
  var W = new Int32Array(64);

  /* SHA-256 of an ASCII string; returns the 8 state words (big-endian digest). */
  function sha256words(text) {
    var n = text.length, blocks = ((n + 8) >> 6) + 1, words = new Int32Array(blocks * 16), i;
    for (i = 0; i < n; i++) words[i >> 2] |= (text.charCodeAt(i) & 0xff) << (24 - (i & 3) * 8);
    words[n >> 2] |= 0x80 << (24 - (n & 3) * 8);
    words[blocks * 16 - 1] = n * 8;
    var h0 = 0x6a09e667, h1 = 0xbb67ae85, h2 = 0x3c6ef372, h3 = 0xa54ff53a,
        h4 = 0x510e527f, h5 = 0x9b05688c, h6 = 0x1f83d9ab, h7 = 0x5be0cd19;
    for (var b = 0; b < blocks; b++) {
      for (i = 0; i < 16; i++) W[i] = words[b * 16 + i];
      for (i = 16; i < 64; i++) {
        var x = W[i - 15], y = W[i - 2];
        var s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        var s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
      }
      var a = h0, bb = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7;
      for (i = 0; i < 64; i++) {
        var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        var t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
        var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        var t2 = (S0 + ((a & bb) ^ (a & c) ^ (bb & c))) | 0;
        h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = bb; bb = a; a = (t1 + t2) | 0;
      }
      h0 = (h0 + a) | 0; h1 = (h1 + bb) | 0; h2 = (h2 + c) | 0; h3 = (h3 + d) | 0;
      h4 = (h4 + e) | 0; h5 = (h5 + f) | 0; h6 = (h6 + g) | 0; h7 = (h7 + h) | 0;
    }
    return [h0, h1, h2, h3, h4, h5, h6, h7];
  }

  function hex(words) {
    var out = "";
    for (var i = 0; i < words.length; i++) out += ("00000000" + (words[i] >>> 0).toString(16)).slice(-8);
    return out;
  }

  function leadingZeroBits(words) {
    var bits = 0;
    for (var i = 0; i < words.length; i++) {
      if (words[i] === 0) { bits += 32; continue; }
      return bits + Math.clz32(words[i]);
    }
    return bits;
  }

  /* Search nonces [start, start + count); return the first that solves, or -1. */
  function search(challenge, bits, start, count) {
    var prefix = challenge + ":";
    for (var nonce = start; nonce < start + count; nonce++) {
      if (leadingZeroBits(sha256words(prefix + nonce)) >= bits) return nonce;
    }
    return -1;
  }

  function solve(challenge, bits) {
    for (var start = 0; ; start += 100000) {
      var found = search(challenge, bits, start, 100000);
      if (found >= 0) return String(found);
    }
  }

  var api = { sha256hex: function (t) { return hex(sha256words(t)); }, search: search, solve: solve };
  if (typeof module !== "undefined" && module.exports) { module.exports = api; return; }
  root.wbsPow = api;
  if (!root.document) return;  /* inside the Web Worker (pow-worker.js): the solver only */

  /* ---- the page: proof of work while the reporter types, size checks, progress bar ----
   * Everything here is an enhancement: without JavaScript the forms post as plain HTML forms
   * (which needs WBS_POW_BITS=0 where a proof is asked for). No text lives in this file: the
   * messages come translated from data-msg-* attributes of #pow-status. */
  var doc = root.document;
  var status = doc.getElementById("pow-status");
  function say(name) {
    if (status) status.textContent = status.getAttribute("data-msg-" + name) || "";
  }

  /* The proof: fetched and solved in a Web Worker as soon as the page opens, so it is usually
   * ready before the reporter has finished typing. Falls back to slices on the main thread. */
  function Prover(bits, form) {
    this.bits = bits; this.form = form; this.proof = null; this.expires = 0; this.waiting = [];
    this.running = false;
  }
  Prover.prototype.start = function () {
    var self = this;
    if (self.running) return;
    self.running = true;
    var request = new XMLHttpRequest();
    request.open("GET", "/api/v1/pow");
    request.onload = function () {
      var pow;
      try { pow = JSON.parse(request.responseText); } catch (e) { self.fail(); return; }
      /* refresh a minute before the challenge expires */
      var expires = Date.now() + Math.max(30000, Date.parse(pow.expires_at) - Date.now() - 60000);
      var done = function (nonce, solver) {
        self.proof = pow.challenge + ":" + nonce; self.expires = expires; self.running = false;
        /* visible to tests and assistive tooling: the proof is ready before the submit */
        self.form.setAttribute("data-pow-ready", solver);
        var waiting = self.waiting; self.waiting = [];
        for (var i = 0; i < waiting.length; i++) waiting[i](self.take());
      };
      var worker = null;
      try { worker = new root.Worker("/static/pow-worker.js"); } catch (e) { worker = null; }
      if (worker) {
        worker.onmessage = function (event) { worker.terminate(); done(event.data, "worker"); };
        worker.onerror = function () { worker.terminate(); slices(pow, done); };
        worker.postMessage({ challenge: pow.challenge, bits: pow.bits });
      } else {
        slices(pow, done);
      }
    };
    request.onerror = function () { self.fail(); };
    request.send();
  };
  Prover.prototype.fail = function () {
    this.running = false;
    var waiting = this.waiting; this.waiting = [];
    for (var i = 0; i < waiting.length; i++) waiting[i](null);
  };
  /* A proof is good once: hand it out, and start on the next one at once. */
  Prover.prototype.take = function () {
    var proof = this.proof;
    this.proof = null;
    this.form.removeAttribute("data-pow-ready");
    this.start();
    return proof;
  };
  Prover.prototype.get = function (callback) {
    if (this.proof && Date.now() < this.expires) { callback(this.take()); return; }
    this.proof = null;
    this.waiting.push(callback);
    this.start();
  };
  function slices(pow, done) {
    var start = 0;
    (function step() {
      var found = search(pow.challenge, pow.bits, start, 20000);
      if (found < 0) { start += 20000; root.setTimeout(step, 0); return; }
      done(String(found), "page");
    })();
  }

  /* Client-side size checks: the server refuses the same limits (413), but telling the
   * reporter before a long upload is kinder. setCustomValidity blocks the submit natively. */
  function checkFiles(form) {
    var inputs = form.querySelectorAll("input[type=file]");
    var maxFiles = +form.getAttribute("data-max-files"), maxFile = +form.getAttribute("data-max-file-bytes");
    var maxTotal = +form.getAttribute("data-max-report-bytes");
    var ok = true;
    for (var i = 0; i < inputs.length; i++) {
      var files = inputs[i].files || [], total = 0, problem = "";
      if (maxFiles >= 0 && files.length > maxFiles) problem = "too-many";
      for (var j = 0; j < files.length && !problem; j++) {
        total += files[j].size;
        if (files[j].size === 0) problem = "empty";
        else if (maxFile && files[j].size > maxFile) problem = "too-big";
      }
      if (!problem && maxTotal && total > maxTotal) problem = "total-too-big";
      var message = problem && status ? status.getAttribute("data-msg-" + problem) : "";
      inputs[i].setCustomValidity(message);
      if (problem) { ok = false; if (status) status.textContent = message; }
      else if (status && status.getAttribute("data-problem")) status.textContent = "";
      if (status) status.setAttribute("data-problem", problem ? "1" : "");
    }
    return ok;
  }

  /* Send with XMLHttpRequest to show upload progress, then show the server's page in place
   * (the receipt page is shown once: it is never fetched again). */
  function send(form, action) {
    var files = form.querySelectorAll("input[type=file]");
    if (!files.length || !root.FormData || !root.XMLHttpRequest) {
      form.action = action; form.submit(); return;
    }
    var box = doc.getElementById("upload-progress"), bar = doc.getElementById("upload-bar");
    var request = new XMLHttpRequest();
    request.open("POST", action);
    if (box) box.hidden = false;
    request.upload.onprogress = function (event) {
      if (bar && event.lengthComputable) bar.value = Math.floor(100 * event.loaded / event.total);
    };
    request.onload = function () {
      doc.open(); doc.write(request.responseText); doc.close();
    };
    request.onerror = function () {
      form.removeAttribute("data-busy");
      if (box) box.hidden = true;
      say("failed");
    };
    request.send(new root.FormData(form));
  }

  function withParam(action, name, value) {
    return action + (action.indexOf("?") >= 0 ? "&" : "?") + name + "=" + encodeURIComponent(value);
  }

  var forms = doc.querySelectorAll("form.wbs-form");
  for (var f = 0; f < forms.length; f++) (function (form) {
    var bits = +(form.getAttribute("data-pow-bits") || 0);
    var prover = bits > 0 ? new Prover(bits, form) : null;
    if (prover) prover.start();
    var inputs = form.querySelectorAll("input[type=file]");
    for (var i = 0; i < inputs.length; i++) inputs[i].addEventListener("change", function () { checkFiles(form); });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (form.getAttribute("data-busy") || !checkFiles(form)) return;
      form.setAttribute("data-busy", "1");
      var action = form.getAttribute("action");
      if (!prover) { say("sending"); send(form, action); return; }
      say("preparing");
      prover.get(function (proof) {
        if (!proof) { form.removeAttribute("data-busy"); say("failed"); return; }
        say("sending");
        send(form, withParam(action, "pow", proof));
      });
    });
  })(forms[f]);
})(this);
