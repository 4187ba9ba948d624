/* Console deposits: drag and drop, one streamed request per file with its
 * own progress bar, the receipt shown when the deposit is durable. Without
 * this script the form still posts all files at once. */
(function () {
  'use strict';
  var form = document.getElementById('upload-form');
  if (!form || !window.FormData || !window.XMLHttpRequest) { return; }
  var input = document.getElementById('files');
  var zone = document.getElementById('dropzone');
  var list = document.getElementById('uploads');
  var csrf = form.getAttribute('data-csrf');
  var text = JSON.parse(document.getElementById('upload-text').textContent);
  var PARALLEL = 2;

  function el(tag, cls, content) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (content !== undefined) { e.textContent = content; }
    return e;
  }

  function fact(dl, label, value, mono) {
    dl.appendChild(el('dt', '', label));
    var dd = el('dd');
    dd.appendChild(el(mono ? 'code' : 'span', mono ? 'hash' : '', value));
    dl.appendChild(dd);
  }

  function showReceipt(item, r) {
    var dl = el('dl', 'facts');
    var no = el('dd');
    var link = el('a', '', r.deposit_no);
    link.href = '/console/evidence/' + r.evidence_id;
    no.appendChild(link);
    dl.appendChild(el('dt', '', text.deposit_no));
    dl.appendChild(no);
    fact(dl, 'SHA-256', r.sha256, true);
    if (r.sm3) { fact(dl, 'SM3', r.sm3, true); }
    fact(dl, text.time, r.time, false);
    fact(dl, text.index, String(r.index), false);
    item.appendChild(dl);
  }

  function upload(file, title) {
    return new Promise(function (resolve) {
      var item = el('li', 'upload');
      var name = el('span', 'name', file.name);
      var bar = el('progress');
      bar.max = 100; bar.value = 0;
      bar.setAttribute('aria-label', text.progress + ' ' + file.name);
      var state = el('span', 'state', text.sending);
      item.appendChild(name); item.appendChild(bar); item.appendChild(state);
      list.appendChild(item);
      var data = new FormData();
      if (title) { data.append('title', title); }
      data.append('file', file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open('POST', '/console/deposit');
      xhr.setRequestHeader('X-CSRF-Token', csrf);
      xhr.setRequestHeader('Accept', 'application/json');
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) { bar.value = Math.floor(100 * e.loaded / e.total); }
      };
      xhr.upload.onload = function () { state.textContent = text.recording; };
      xhr.onload = function () {
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
        if (xhr.status >= 200 && xhr.status < 300 && body && body.receipts) {
          bar.value = 100;
          item.classList.add('done');
          state.textContent = text.done;
          showReceipt(item, body.receipts[0]);
        } else {
          item.classList.add('failed');
          state.textContent = text.failed + ' ' + (body && (body.detail || body.title) || xhr.status);
        }
        resolve();
      };
      xhr.onerror = function () {
        item.classList.add('failed');
        state.textContent = text.failed;
        resolve();
      };
      xhr.send(data);
    });
  }

  async function send(files) {
    var title = document.getElementById('upload-title').value;
    var queue = Array.prototype.slice.call(files);
    async function worker() {
      while (queue.length) { await upload(queue.shift(), title); }
    }
    var workers = [];
    for (var i = 0; i < Math.min(PARALLEL, queue.length); i++) { workers.push(worker()); }
    await Promise.all(workers);
    input.value = '';
  }

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    if (input.files && input.files.length) { send(input.files); }
  });
  ['dragenter', 'dragover'].forEach(function (type) {
    zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.add('over'); });
  });
  ['dragleave', 'drop'].forEach(function (type) {
    zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.remove('over'); });
  });
  zone.addEventListener('drop', function (e) {
    if (e.dataTransfer && e.dataTransfer.files.length) { send(e.dataTransfer.files); }
  });
})();
