/* Interactive capture: show the remote browser's latest frame, send mouse and
 * keyboard input back, keep the UTC clock and the session state up to date.
 * Fetching frames and state keeps the session alive: closing the page ends it. */
(function () {
  'use strict';
  var root = document.getElementById('live');
  if (!root || !window.fetch) { return; }
  var img = document.getElementById('live-frame');
  var csrf = root.getAttribute('data-csrf');
  var width = Number(root.getAttribute('data-width'));
  var height = Number(root.getAttribute('data-height'));
  var clock = document.getElementById('live-clock');
  var status = document.getElementById('live-status');
  var inputs = document.getElementById('live-inputs');
  var left = document.getElementById('live-left');
  var labels = JSON.parse(document.getElementById('live-labels').textContent);
  var KEYS = ['Enter', 'Tab', 'Escape', 'Backspace', 'Delete', 'ArrowUp', 'ArrowDown',
    'ArrowLeft', 'ArrowRight', 'Home', 'End', 'PageUp', 'PageDown'];
  var seq = 0;
  var ended = false;
  var url = null;
  var pending = [];
  var sending = false;
  var wheel = 0;
  var typed = '';
  var typedTimer = null;

  function frames() {
    if (ended) { return; }
    fetch('/console/live/frame?after=' + seq, {credentials: 'same-origin'}).then(function (r) {
      if (r.status === 200) {
        seq = Number(r.headers.get('X-Frame-Seq')) || seq + 1;
        var at = r.headers.get('X-Frame-Time');
        if (at) { clock.textContent = at; }
        return r.blob().then(function (b) {
          var next = URL.createObjectURL(b);
          if (url) { URL.revokeObjectURL(url); }
          url = next;
          img.src = next;
          img.setAttribute('data-seq', String(seq));
          frames();
        });
      }
      if (r.status === 204) { frames(); return; }
      ended = true;
      return null;
    }).catch(function () { setTimeout(frames, 1000); });
  }

  function state() {
    if (ended) { return; }
    fetch('/console/live/state', {credentials: 'same-origin'}).then(function (r) {
      if (!r.ok) { ended = true; status.textContent = String(r.status); return null; }
      return r.json().then(function (s) {
        status.textContent = labels[s.status] || s.status;
        status.setAttribute('data-status', s.status);
        inputs.textContent = String(s.inputs);
        left.textContent = String(s.seconds_left);
        setTimeout(state, 1000);
      });
    }).catch(function () { setTimeout(state, 2000); });
  }

  function flush() {
    if (sending || !pending.length) { return; }
    var events = pending.splice(0, 50);
    sending = true;
    fetch('/console/live/input', {
      method: 'POST',
      credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
      body: JSON.stringify({events: events})
    }).then(function (r) {
      if (!r.ok) { status.textContent = String(r.status); }
    }).catch(function () { return null; }).then(function () {
      sending = false;
      flush();
    });
  }

  function send(event) { pending.push(event); flush(); }

  function point(e) {
    var box = img.getBoundingClientRect();
    var x = Math.round((e.clientX - box.left) * width / box.width);
    var y = Math.round((e.clientY - box.top) * height / box.height);
    return [Math.min(Math.max(x, 0), width - 1), Math.min(Math.max(y, 0), height - 1)];
  }

  function flushText() {
    if (typed) { send({action: 'text', text: typed, secret: false}); typed = ''; }
  }

  img.addEventListener('click', function (e) {
    flushText();
    var p = point(e);
    img.focus();
    send({action: 'pointer', type: 'click', x: p[0], y: p[1], button: 'left'});
  });
  img.addEventListener('wheel', function (e) {
    e.preventDefault();
    wheel += Math.round(e.deltaY);
    setTimeout(function () {
      if (wheel) { send({action: 'wheel', dy: Math.max(-10000, Math.min(10000, wheel))}); wheel = 0; }
    }, 150);
  }, {passive: false});
  img.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    if (KEYS.indexOf(e.key) >= 0) {
      e.preventDefault();
      flushText();
      send({action: 'key', key: e.key});
    } else if (e.key.length === 1) {
      e.preventDefault();
      typed += e.key;
      clearTimeout(typedTimer);
      typedTimer = setTimeout(flushText, 400);
    }
  });
  document.getElementById('live-text-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var field = document.getElementById('live-text');
    var secret = document.getElementById('live-secret').checked;
    if (field.value) {
      flushText();
      send({action: 'text', text: field.value, secret: secret});
      field.value = '';
    }
  });
  ['live-finish', 'live-abandon'].forEach(function (id) {
    document.getElementById(id).addEventListener('submit', function () {
      flushText();
      ended = true;
    });
  });
  frames();
  state();
}());
