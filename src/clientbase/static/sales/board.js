// Kanban boards: drag a card to another column, the move is saved at once; a refused move
// puts the card back and says why. Lost and dead columns ask for the reason first.
(function () {
  "use strict";

  function paint(root) {
    root.querySelectorAll("[data-colour]").forEach(function (el) {
      var colour = el.getAttribute("data-colour");
      if (el.classList.contains("board-dot")) {
        el.style.backgroundColor = colour;
      } else {
        el.parentElement.style.borderTopColor = colour;
      }
    });
  }

  paint(document);
  var board = document.getElementById("board");
  if (!board || typeof Sortable === "undefined") {
    return;
  }
  var alertBox = document.getElementById("board-alert");
  var modalEl = document.getElementById("reason-modal");
  var reasonForm = document.getElementById("reason-form");
  var reasonInput = document.getElementById("reason-input");
  var modal = modalEl && window.bootstrap ? new window.bootstrap.Modal(modalEl) : null;
  var pending = null;

  function csrfToken() {
    var headers = document.body.getAttribute("hx-headers") || "{}";
    try {
      return JSON.parse(headers)["X-CSRFToken"] || "";
    } catch (e) {
      return "";
    }
  }

  function say(message, kind) {
    alertBox.innerHTML = "";
    var div = document.createElement("div");
    div.className = "alert alert-" + (kind || "danger") + " alert-dismissible shadow";
    div.setAttribute("id", "board-message");
    div.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn-close";
    close.setAttribute("data-bs-dismiss", "alert");
    close.setAttribute("aria-label", "Close");
    div.appendChild(close);
    alertBox.appendChild(div);
    window.setTimeout(function () {
      if (div.parentElement) {
        div.remove();
      }
    }, 8000);
  }

  function putBack(move) {
    var reference = move.from.children[move.oldIndex] || null;
    move.from.insertBefore(move.item, reference);
  }

  function countIn(list) {
    return list.querySelectorAll(".board-card").length;
  }

  function send(move, reason) {
    var card = move.item;
    var body = new URLSearchParams();
    body.set("stage", move.to.getAttribute("data-stage"));
    body.set("version", card.getAttribute("data-version"));
    body.set("reason", reason || "");
    var query = board.getAttribute("data-query");
    card.classList.add("board-saving");
    fetch(card.getAttribute("data-move-url") + (query ? "?" + query : ""), {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch" },
      body: body,
      credentials: "same-origin",
    })
      .then(function (response) {
        return response
          .json()
          .catch(function () {
            return { message: document.body.getAttribute("data-msg-failed") };
          })
          .then(function (data) {
            return { ok: response.ok, status: response.status, data: data };
          });
      })
      .then(function (result) {
        card.classList.remove("board-saving");
        if (!result.ok) {
          putBack(move);
          if (result.data.needs_reason && modal) {
            ask(move);
            return;
          }
          say(result.data.message || document.body.getAttribute("data-msg-failed"));
          return;
        }
        var holder = document.createElement("div");
        holder.innerHTML = result.data.card.trim();
        var fresh = holder.firstElementChild;
        card.replaceWith(fresh);
        Object.keys(result.data.columns).forEach(function (stage) {
          var target = document.getElementById("totals-" + stage);
          if (target) {
            target.innerHTML = result.data.columns[stage];
          }
        });
        board.dispatchEvent(new CustomEvent("board:moved", { detail: { card: fresh.id } }));
      })
      .catch(function () {
        card.classList.remove("board-saving");
        putBack(move);
        say(document.body.getAttribute("data-msg-failed"));
      });
  }

  function ask(move) {
    alertBox.innerHTML = "";
    pending = move;
    reasonInput.value = "";
    modal.show();
  }

  if (reasonForm) {
    reasonForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var reason = reasonInput.value.trim();
      if (!reason || !pending) {
        return;
      }
      var move = pending;
      pending = null;
      modal.hide();
      // The card went back while we asked: carry it over again, then save.
      var reference = move.to.children[move.newIndex] || null;
      move.to.insertBefore(move.item, reference);
      send(move, reason);
    });
    modalEl.addEventListener("hidden.bs.modal", function () {
      if (pending) {
        pending = null;
      }
    });
  }

  function needsReason(list) {
    var state = list.closest(".board-column").getAttribute("data-state");
    return state === "lost" || state === "dead";
  }

  function attach(list) {
    Sortable.create(list, {
      group: "board",
      sort: false,
      draggable: ".board-card",
      animation: 120,
      ghostClass: "sortable-ghost",
      onEnd: function (move) {
        if (move.from === move.to) {
          return;
        }
        if (needsReason(move.to) && modal) {
          putBack(move);
          ask(move);
          return;
        }
        send(move, "");
      },
    });
  }

  board.querySelectorAll(".board-cards").forEach(attach);
  window.boardCardCount = countIn;
})();
