// Live updates: Socket.IO events become htmx triggers, so the fragments that show the
// changed thing re-fetch themselves. No page reloads, no HTML built in JavaScript.
(function () {
  "use strict";

  function fire(name, detail) {
    if (window.htmx) {
      window.htmx.trigger(document.body, name, detail || {});
    }
  }

  function connectLive() {
    if (!document.body.dataset.live || typeof window.io !== "function") {
      return;
    }
    // Same origin: the browser's session cookie authenticates the socket.
    var socket = window.io({ transports: ["websocket", "polling"] });
    ["qr", "connected", "disconnected", "reconnecting", "session_status"].forEach(function (event) {
      socket.on(event, function (data) {
        fire("wa-session-" + data.sessionId);
        fire("wa-sessions");
      });
    });
    socket.on("message_status", function (data) {
      fire("wa-messages-" + data.sessionId);
      fire("wa-messages");
      if (data.batchId) {
        fire("wa-batch-" + data.batchId);
      }
    });
    socket.on("message", function (data) {
      fire("wa-messages-" + data.sessionId);
      fire("wa-messages");
      fire("wa-sessions");
    });
    socket.on("bulk_progress", function (data) {
      fire("wa-batch-" + data.batchId);
    });
    document.body.dataset.socket = "pending";
    // Events sent while the page was loading or the socket was down are missed: on every
    // (re)connect, the live fragments re-fetch once.
    socket.on("connect", function () {
      document.body.dataset.socket = "connected";
      fire("wa-resync");
    });
    socket.on("disconnect", function () { document.body.dataset.socket = "disconnected"; });
  }

  // Copy buttons: <button data-copy="#id">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) {
      return;
    }
    var source = document.querySelector(button.dataset.copy);
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 1500);
      });
    }
  });

  document.addEventListener("DOMContentLoaded", connectLive);
})();
