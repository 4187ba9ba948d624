/* Hashes one file with one algorithm (sha256 or sm3), reading it in chunks,
 * so a file of any size is hashed in constant memory. Posts progress
 * messages {done, total} and finally {digest} or {error}. */
'use strict';
importScripts('../vendor/hash-wasm/sha256.umd.min.js', '../vendor/hash-wasm/sm3.umd.min.js');

var CHUNK = 8 * 1024 * 1024;

self.onmessage = async function (event) {
  var file = event.data.file;
  var algorithm = event.data.algorithm;
  try {
    var hasher = algorithm === 'sm3' ? await hashwasm.createSM3() : await hashwasm.createSHA256();
    hasher.init();
    var next = file.slice(0, CHUNK).arrayBuffer();
    for (var offset = 0; offset < file.size; offset += CHUNK) {
      var buffer = await next;
      if (offset + CHUNK < file.size) {
        next = file.slice(offset + CHUNK, offset + 2 * CHUNK).arrayBuffer();
      }
      hasher.update(new Uint8Array(buffer));
      self.postMessage({done: Math.min(file.size, offset + CHUNK), total: file.size});
    }
    self.postMessage({digest: hasher.digest('hex')});
  } catch (e) {
    self.postMessage({error: String(e && e.message || e)});
  }
};
