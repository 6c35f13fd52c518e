// Keeps the offer's status line on the Device configuration page
// current while it waits for OK on the appliance, by asking the page's
// status endpoint every two seconds. Without JavaScript the line and its
// Refresh link work as they are.
(function () {
  "use strict";
  var line = document.querySelector("p.offer[data-status]");
  if (!line || line.hasAttribute("data-done")) {
    return;
  }
  var refresh = line.querySelector("a.refresh");
  if (refresh) {
    refresh.hidden = true;
  }
  var text = line.querySelector(".text");
  var shown = line.className;
  function show(st) {
    line.className = "offer " + st.class;
    text.textContent = st.text;
    if (line.className !== shown) {
      // The page's banners ("Sent to appliance …, press OK on it", an
      // error) spoke of the state that has just ended.
      var stale = document.querySelectorAll("main > p.flash, main > p.error");
      for (var i = 0; i < stale.length; i++) {
        stale[i].remove();
      }
      shown = line.className;
    }
  }
  function ask() {
    fetch(line.getAttribute("data-status"), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) {
          throw new Error("status " + r.status);
        }
        return r.json();
      })
      .then(function (st) {
        show(st);
        // Keep asking while the offer waits for OK on the appliance.
        if (!st.done && st.class === "pending") {
          setTimeout(ask, 2000);
        }
      })
      .catch(function () {
        if (refresh) {
          refresh.hidden = false; // fall back to reloading by hand
        }
      });
  }
  if (line.classList.contains("pending")) {
    setTimeout(ask, 2000);
  }
})();
