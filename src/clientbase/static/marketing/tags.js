// Message templates: a click on a tag in the help panel inserts it where the cursor is.
(function () {
  "use strict";
  var lastField = null;

  function target() {
    if (lastField && document.body.contains(lastField)) return lastField;
    return document.getElementById("id_body");
  }

  document.addEventListener("focusin", function (event) {
    var el = event.target;
    if (el && (el.id === "id_body" || el.id === "id_subject")) lastField = el;
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest(".tag-insert");
    if (!button) return;
    var field = target();
    if (!field) return;
    var text;
    if (button.dataset.loop) {
      var fields = (button.dataset.fields || "").split(",").slice(0, 2);
      text = "{% for line in " + button.dataset.loop + " %}" +
        fields.map(function (f) { return "{{ line." + f + " }}"; }).join(" ") +
        "\n{% endfor %}";
    } else {
      text = "{{ " + button.dataset.tag + " }}";
    }
    var start = field.selectionStart == null ? field.value.length : field.selectionStart;
    var end = field.selectionEnd == null ? start : field.selectionEnd;
    field.value = field.value.slice(0, start) + text + field.value.slice(end);
    field.focus();
    field.selectionStart = field.selectionEnd = start + text.length;
    // Let the live preview know the text changed.
    field.dispatchEvent(new KeyboardEvent("keyup", { bubbles: true }));
    field.dispatchEvent(new Event("change", { bubbles: true }));
  });
})();

// The subject is for email only: hide it while an SMS template is edited.
(function () {
  "use strict";
  function sync() {
    var channel = document.getElementById("id_channel");
    var subject = document.querySelector("#template-form .field-subject");
    if (!channel || !subject || channel.type === "hidden") return;
    subject.classList.toggle("d-none", channel.value === "sms");
  }
  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "id_channel") sync();
  });
  document.addEventListener("DOMContentLoaded", sync);
})();
