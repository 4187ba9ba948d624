/* In-browser SHA-256 and SM3 of a file (the file never leaves the machine).
 * Each algorithm runs in its own worker, so the two digests are computed in
 * parallel and the page stays responsive; if workers are unavailable the
 * page hashes on its own thread, still chunk by chunk.
 *
 * Markup: <input type=file data-hash-into="SHA_INPUT_ID SM3_INPUT_ID"
 *          data-progress="PROGRESS_ID"> fills the two inputs when a file is chosen. */
(function () {
  'use strict';
  var CHUNK = 8 * 1024 * 1024;
  var workerUrl = (document.currentScript && document.currentScript.src || '/static/js/hashing.js')
    .replace(/hashing\.js(\?.*)?$/, 'hash-worker.js');

  function inWorker(file, algorithm, onProgress) {
    return new Promise(function (resolve, reject) {
      var worker = new Worker(workerUrl);
      worker.onmessage = function (event) {
        var m = event.data;
        if (m.error) { worker.terminate(); reject(new Error(m.error)); }
        else if (m.digest) { worker.terminate(); resolve(m.digest); }
        else if (onProgress) { onProgress(m.done, m.total); }
      };
      worker.onerror = function (event) { worker.terminate(); reject(new Error(event.message || 'worker failed')); };
      worker.postMessage({file: file, algorithm: algorithm});
    });
  }

  async function onThread(file, onProgress) {
    var sha = await hashwasm.createSHA256();
    var sm3 = await hashwasm.createSM3();
    sha.init(); sm3.init();
    for (var offset = 0; offset < file.size; offset += CHUNK) {
      var chunk = new Uint8Array(await file.slice(offset, offset + CHUNK).arrayBuffer());
      sha.update(chunk); sm3.update(chunk);
      if (onProgress) { onProgress(Math.min(file.size, offset + CHUNK), file.size); }
    }
    return {sha256: sha.digest('hex'), sm3: sm3.digest('hex')};
  }

  /** {sha256, sm3} of a File or Blob; onProgress(done, total) as it goes. */
  async function hashFile(file, onProgress) {
    if (typeof Worker === 'function') {
      var done = {sha256: 0, sm3: 0};
      var report = function (key) {
        return function (n, total) {
          done[key] = n;
          if (onProgress) { onProgress(Math.min(done.sha256, done.sm3), total); }
        };
      };
      try {
        var results = await Promise.all([
          inWorker(file, 'sha256', report('sha256')),
          inWorker(file, 'sm3', report('sm3'))
        ]);
        return {sha256: results[0], sm3: results[1]};
      } catch (e) {
        /* fall back to this thread */
      }
    }
    return onThread(file, onProgress);
  }

  window.evidenceHash = {hashFile: hashFile};

  function wire(input) {
    var targets = (input.getAttribute('data-hash-into') || '').split(/\s+/);
    var progress = document.getElementById(input.getAttribute('data-progress') || '');
    input.addEventListener('change', async function () {
      var file = input.files && input.files[0];
      if (!file) { return; }
      var sha = document.getElementById(targets[0]);
      var sm3 = document.getElementById(targets[1]);
      if (progress) { progress.hidden = false; progress.value = 0; }
      input.setAttribute('aria-busy', 'true');
      try {
        var digests = await hashFile(file, function (n, total) {
          if (progress) { progress.value = total ? Math.floor(100 * n / total) : 100; }
        });
        if (sha) { sha.value = digests.sha256; }
        if (sm3) { sm3.value = digests.sm3; }
        if (progress) { progress.value = 100; }
      } finally {
        input.removeAttribute('aria-busy');
      }
    });
  }

  document.querySelectorAll('input[type=file][data-hash-into]').forEach(wire);
})();
