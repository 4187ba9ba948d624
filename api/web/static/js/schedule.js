/* Console capture form: send the browser's time zone with the optional start
 * time, so "09:00" means nine o'clock where the user is. Without this script
 * the start time is read as UTC. */
(function () {
  'use strict';
  var tz = document.getElementById('capture-tz');
  var start = document.getElementById('capture-start');
  if (!tz || !start) { return; }
  function update() {
    var when = start.value ? new Date(start.value) : new Date();
    tz.value = String(-when.getTimezoneOffset());
  }
  start.addEventListener('change', update);
  update();
}());
