// Progressive enhancement only: every page works without it.
// - [data-copy]: copies the text of the element it names (a secret shown once).
// - [data-live-status]: polls the object's status while it is not final and
//   reloads the page when it changes (the timeline and actions follow).
// - form[data-confirm]: asks before a destructive action.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(() => {
    button.textContent = "Copied";
  });
});
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
for (const badge of document.querySelectorAll("[data-live-status]")) {
  const initial = badge.textContent.trim();
  const poll = async () => {
    try {
      const response = await fetch(badge.dataset.liveStatus, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const { status } = await response.json();
        // The page again, without the one-time message of its address.
        if (status && status !== initial) { window.location.replace(window.location.pathname); return; }
      }
    } catch (_) { /* the network hiccuped: try again */ }
    setTimeout(poll, 1000);
  };
  setTimeout(poll, 1000);
}
