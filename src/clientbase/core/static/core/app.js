// Clientbase page behaviour; no inline scripts, so the content security policy stays strict.
document.addEventListener("htmx:responseError", function (event) {
  const status = event.detail.xhr.status;
  const alert = document.createElement("div");
  alert.className = "alert alert-danger";
  alert.setAttribute("role", "alert");
  alert.textContent = status === 403 ? "Your role does not allow this action." : "The server could not do this (" + status + "). Nothing was saved.";
  const main = document.querySelector("main");
  if (main) main.prepend(alert);
});

// Close the search suggestions when the user clicks elsewhere or presses Escape.
document.addEventListener("click", function (event) {
  const box = document.getElementById("search-suggestions");
  if (box && !event.target.closest("form[role=search]")) box.innerHTML = "";
});
document.addEventListener("keydown", function (event) {
  const box = document.getElementById("search-suggestions");
  if (box && event.key === "Escape") box.innerHTML = "";
});
