// Shows every <time datetime> of the page in the viewer's time zone, as
// "2026-03-01 13:00:15 GMT+1"; the title keeps the UTC time on hover.
// Without JavaScript the times stay in UTC, which they say.
(function () {
  "use strict";
  function two(n) {
    return (n < 10 ? "0" : "") + n;
  }
  var zone;
  try {
    zone = new Intl.DateTimeFormat("en-GB", { timeZoneName: "short" });
  } catch (e) {
    zone = null;
  }
  function zoneName(d) {
    if (!zone || !zone.formatToParts) {
      return "";
    }
    var parts = zone.formatToParts(d);
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].type === "timeZoneName") {
        return " " + parts[i].value;
      }
    }
    return "";
  }
  var times = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < times.length; i++) {
    var t = times[i];
    var d = new Date(t.getAttribute("datetime"));
    if (isNaN(d.getTime())) {
      continue;
    }
    t.textContent = d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " +
      two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds()) + zoneName(d);
  }
})();
