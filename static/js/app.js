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
    // The send governor paused a session (or its owner resumed it): the banner on every page
    // and the session's pace card re-fetch.
    ["session_paused", "session_resumed"].forEach(function (event) {
      socket.on(event, function (data) {
        fire("wa-paused");
        fire("wa-session-" + data.sessionId);
      });
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

  // Times in the reader's own zone. The server writes them in UTC, labelled, inside
  // <time datetime data-local="minutes|seconds">; a datetime-local input with data-local-from
  // gets its value in local time; hidden inputs with data-browser-timezone tell the server
  // which zone a typed time is in (without this script: the zone the server said).
  var browserZone = "";
  try {
    browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    browserZone = "";
  }

  function pad(number) {
    return String(number).padStart(2, "0");
  }

  function localize(root) {
    if (!root || !root.querySelectorAll) {
      return;
    }
    root.querySelectorAll("time[data-local]:not([title])").forEach(function (element) {
      var moment = new Date(element.getAttribute("datetime"));
      if (isNaN(moment)) {
        return;
      }
      var options = { dateStyle: "medium", timeStyle: element.dataset.local === "seconds" ? "medium" : "short" };
      element.title = element.textContent.trim();  // the UTC time, on hover
      element.textContent = new Intl.DateTimeFormat(undefined, options).format(moment);
    });
    root.querySelectorAll("input[data-local-from]").forEach(function (input) {
      var moment = new Date(input.dataset.localFrom);
      if (!isNaN(moment)) {
        input.value = moment.getFullYear() + "-" + pad(moment.getMonth() + 1) + "-" + pad(moment.getDate()) +
          "T" + pad(moment.getHours()) + ":" + pad(moment.getMinutes());
      }
      input.removeAttribute("data-local-from");
    });
    if (browserZone) {
      root.querySelectorAll("input[data-browser-timezone]").forEach(function (input) { input.value = browserZone; });
      root.querySelectorAll("[data-browser-timezone-name]").forEach(function (element) {
        element.textContent = browserZone;
      });
      root.querySelectorAll("[data-fill-timezone]").forEach(function (button) {
        button.textContent = "Use this browser's time zone (" + browserZone + ")";
        button.hidden = false;
      });
    }
  }

  // <button data-fill-timezone="#field">: put the browser's time zone in that field.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-fill-timezone]");
    var field = button && document.querySelector(button.dataset.fillTimezone);
    if (field && browserZone) {
      field.value = browserZone;
      field.focus();
    }
  });

  // A live list the user is editing in (a form opened in it, or focus inside) is not
  // refreshed under their hands: its refresh waits for the next event after they finish.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var element = event.detail.elt;
    if (element && element.matches("[data-hold-while-editing]") &&
        (element.querySelector("details[open]") || element.contains(document.activeElement))) {
      event.preventDefault();
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

  // Right after a swap, in the same task: the UTC text is never painted (htmx:load comes later).
  document.addEventListener("htmx:afterSwap", function () { localize(document.body); });
  document.addEventListener("htmx:load", function (event) { localize(event.target); });
  document.addEventListener("DOMContentLoaded", function () {
    localize(document);
    connectLive();
  });
})();
