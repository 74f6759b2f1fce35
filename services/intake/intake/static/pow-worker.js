/* The proof-of-work solver off the page's thread (same origin; CSP worker-src 'self').
 * Receives {challenge, bits}, answers with the decimal nonce. The solver is pow.js's. */
importScripts("/static/pow.js");
self.onmessage = function (event) {
  self.postMessage(self.wbsPow.solve(event.data.challenge, event.data.bits));
};
