// smsgate console: keeps the parts of a page marked data-live up to date.
// Each part listens to server-sent events on the page's own address (the
// server sends the part again whenever it changes); where EventSource is
// missing, it asks the same address for that part every few seconds instead.
// Every page works without this script; it only saves pressing reload.
(function () {
  "use strict";
  function show(el, html) {
    if (html !== el.dataset.shown) {
      el.dataset.shown = html;
      el.innerHTML = html;
    }
  }
  function listen(el) {
    var url = new URL(window.location.href);
    url.searchParams.set("live_part", el.dataset.live);
    var events = new EventSource(url.toString(), { withCredentials: true });
    events.onmessage = function (event) { show(el, event.data); };
    events.addEventListener("end", function () { events.close(); });
  }
  function refresh(el) {
    fetch(window.location.href, {
      headers: { "x-console-part": el.dataset.live },
      credentials: "same-origin",
    })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { show(el, html); } })
      .catch(function () {})
      .finally(function () { poll(el); });
  }
  function poll(el) {
    window.setTimeout(function () {
      if (document.hidden) { poll(el); } else { refresh(el); }
    }, Number(el.dataset.every || 3000));
  }
  document.querySelectorAll("[data-live]").forEach(
    "EventSource" in window ? listen : poll
  );
})();
