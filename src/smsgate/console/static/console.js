// smsgate console: refreshes the parts of a page marked data-live, by asking
// the same address for that part only. Every page works without this script;
// it only saves pressing reload.
(function () {
  "use strict";
  function refresh(el) {
    fetch(window.location.href, {
      headers: { "x-console-part": el.dataset.live },
      credentials: "same-origin",
    })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && html !== el.dataset.shown) {
          el.dataset.shown = html;
          el.innerHTML = html;
        }
      })
      .catch(function () {})
      .finally(function () { schedule(el); });
  }
  function schedule(el) {
    window.setTimeout(function () {
      if (document.hidden) { schedule(el); } else { refresh(el); }
    }, Number(el.dataset.every || 3000));
  }
  document.querySelectorAll("[data-live]").forEach(schedule);
})();
