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
    // A reaction or a poll vote changes a message already shown: its lists re-fetch.
    ["message_reaction", "poll_vote"].forEach(function (event) {
      socket.on(event, function (data) {
        fire("wa-messages-" + data.sessionId);
        fire("wa-messages");
      });
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

  // A voice note or video kept by hx-preserve plays on while its list refreshes around it, but
  // htmx moves it with moveBefore(), after which Chromium draws no controls until they are
  // switched off and on again.
  document.addEventListener("htmx:afterSwap", function (event) {
    event.target.querySelectorAll("audio[hx-preserve], video[hx-preserve]").forEach(function (player) {
      player.controls = false;
      player.controls = true;
    });
  });

  document.addEventListener("DOMContentLoaded", connectLive);
})();
