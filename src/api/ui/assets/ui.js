// netbox-toolkit page enhancements. The page works without them; they add
// the system colour theme, a command filter, copy to clipboard, a
// confirmation for configuration commands and a busy note while a run lasts.
(function () {
  "use strict";

  // Theme: follow the system, as NetBox does when no mode was chosen.
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)");
  function applyTheme() {
    document.documentElement.setAttribute("data-bs-theme", dark && dark.matches ? "dark" : "light");
  }
  applyTheme();
  if (dark && dark.addEventListener) {
    dark.addEventListener("change", applyTheme);
  }

  function setUpFilter(input) {
    var table = document.querySelector(input.getAttribute("data-filter"));
    if (!table) {
      return;
    }
    input.hidden = false;
    input.addEventListener("input", function () {
      var needle = input.value.trim().toLowerCase();
      table.querySelectorAll("tbody tr").forEach(function (row) {
        row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) === -1;
      });
    });
  }

  function setUpCopy(button) {
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) {
      return;
    }
    button.hidden = false;
    var label = button.querySelector("span");
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent).then(function () {
        label.textContent = "Copied";
        button.setAttribute("data-copied", "yes");
        setTimeout(function () { label.textContent = "Copy"; }, 2000);
      }, function () {
        label.textContent = "Copy failed";
      });
    });
  }

  function setUpRunForm(form) {
    form.addEventListener("submit", function (event) {
      var question = form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) {
        event.preventDefault();
        return;
      }
      var button = form.querySelector("button[type=submit]");
      var busy = form.querySelector(".nbt-busy");
      // Disabled after the submission is queued, so the button's value still goes.
      setTimeout(function () { button.disabled = true; }, 0);
      if (busy) {
        busy.hidden = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-filter]").forEach(setUpFilter);
    document.querySelectorAll("[data-copy]").forEach(setUpCopy);
    var form = document.getElementById("run-form");
    if (form) {
      setUpRunForm(form);
    }
    var result = document.getElementById("result");
    if (result && window.location.hash === "#result") {
      result.focus();
    }
  });
})();
