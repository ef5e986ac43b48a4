// Deworker review: keyboard shortcuts, clickable table rows, and confirmation for destructive buttons.
// A static file because the Content-Security-Policy allows no inline script. Pages work without it.
"use strict";

(function () {
  const typing = (el) => el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  let pendingG = false;
  let selected = -1;

  function rows() {
    const list = document.querySelector("[data-nav-list]");
    return list ? Array.from(list.querySelectorAll("tr[data-href]")) : [];
  }

  function select(index) {
    const all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(all.length - 1, index));
    all.forEach((row, i) => row.classList.toggle("selected", i === selected));
    all[selected].scrollIntoView({ block: "nearest" });
  }

  function focusButton(id) {
    const button = document.getElementById(id);
    if (button && !button.disabled) button.focus();
  }

  document.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-href]");
    if (row && !event.target.closest("a, button, input, textarea")) window.location.href = row.dataset.href;
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });

  // Request changes and Reject send the feedback to the agent: say so before the server has to refuse.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-needs-feedback]");
    const feedback = document.getElementById("feedback");
    if (!button || !feedback) return;
    feedback.setCustomValidity(feedback.value.trim() ? "" : `${button.textContent.trim()} needs feedback for the agent.`);
    if (!feedback.reportValidity()) event.preventDefault();
  });
  document.addEventListener("input", (event) => {
    if (event.target.id === "feedback") event.target.setCustomValidity("");
  });

  // The inbox checks the queue now and then and offers a reload when its rows changed (never reloads by itself,
  // so a reviewer reading the list does not lose their place).
  const watch = document.getElementById("inbox-watch");
  if (watch && Number(watch.dataset.everyMs) > 0) {
    const timer = window.setInterval(async () => {
      try {
        const answer = await fetch(watch.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        const status = answer.ok ? await answer.json() : null;
        if (!status) { window.clearInterval(timer); return; }  // logged out, or the server is gone
        if (status.signature === watch.dataset.signature) return;
        const news = document.getElementById("inbox-news");
        const link = document.createElement("a");
        link.href = watch.dataset.reload;
        link.textContent = "Reload";
        news.replaceChildren(`The queue changed: ${status.pending} awaiting review. `, link);
        news.hidden = false;
      } catch (error) {
        window.clearInterval(timer);
      }
    }, Number(watch.dataset.everyMs));
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const help = document.getElementById("shortcuts");
    if (event.key === "Escape") {
      if (typing(document.activeElement)) document.activeElement.blur();
      return;
    }
    if (typing(event.target)) return;
    if (pendingG) {
      pendingG = false;
      if (event.key === "i") window.location.href = "/inbox";
      if (event.key === "f") window.location.href = "/dashboard";
      return;
    }
    switch (event.key) {
      case "?": if (help && !help.open) help.showModal(); break;
      case "g": pendingG = true; window.setTimeout(() => { pendingG = false; }, 1000); break;
      case "j": select(selected + 1); break;
      case "k": select(selected - 1); break;
      case "o":
      case "Enter": {
        const all = rows();
        if (selected >= 0 && all[selected]) window.location.href = all[selected].dataset.href;
        else return;
        break;
      }
      case "a": focusButton("approve"); break;
      case "x": {
        // reject needs feedback: write it first (x again, once the box is left with Escape, focuses Reject)
        const feedback = document.getElementById("feedback");
        if (feedback && !feedback.value.trim()) feedback.focus();
        else focusButton("reject");
        break;
      }
      case "c": {
        const feedback = document.getElementById("feedback");
        if (feedback) feedback.focus();
        break;
      }
      default: return;
    }
    event.preventDefault();
  });
})();
