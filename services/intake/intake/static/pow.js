/* Proof of work for the reporter form (same origin, no third-party code).
 * Fetches a challenge from /api/v1/pow, finds a decimal nonce such that
 * SHA-256(challenge + ":" + nonce) starts with `bits` zero bits, and submits the
 * form to /submit?pow=<challenge>:<nonce>. SHA-256 is implemented here because
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

  /* Browser: wire the form. Work in slices so the page stays responsive. */
  var form = root.document && root.document.getElementById("report-form");
  if (!form || !form.getAttribute("data-pow-bits") || form.getAttribute("data-pow-bits") === "0") return;
  var status = root.document.getElementById("pow-status");
  var busy = false;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    busy = true;
    if (status) status.textContent = "Menyiapkan pengiriman aman, mohon tunggu\u2026";
    var request = new XMLHttpRequest();
    request.open("GET", "/api/v1/pow");
    request.onload = function () {
      var pow;
      try { pow = JSON.parse(request.responseText); } catch (e) { busy = false; return; }
      var start = 0;
      (function step() {
        var found = search(pow.challenge, pow.bits, start, 20000);
        if (found < 0) { start += 20000; root.setTimeout(step, 0); return; }
        form.action = "/submit?pow=" + encodeURIComponent(pow.challenge + ":" + found);
        if (status) status.textContent = "Mengirim\u2026";
        form.submit();
      })();
    };
    request.onerror = function () {
      busy = false;
      if (status) status.textContent = "Gagal menghubungi server. Coba lagi.";
    };
    request.send();
  });
})(this);
