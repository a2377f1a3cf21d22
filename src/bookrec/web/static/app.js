// bookrec web app: small progressive enhancements. Every page works without this file.
"use strict";

document.documentElement.classList.add("js");

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// A training job's progress bar, kept up to date by polling its progress (JSON, same origin).
function pollJob(section) {
  const url = section.dataset.poll;
  const bar = section.querySelector("progress");
  const field = (name) => section.querySelector(`[data-field="${name}"]`);
  const tick = async () => {
    let job;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) { throw new Error(String(response.status)); }
      job = await response.json();
    } catch (error) {
      window.setTimeout(tick, 5000);
      return;
    }
    bar.value = job.progress;
    bar.textContent = `${Math.round(job.progress)}%`;
    field("percent").textContent = `${job.progress}%`;
    const status = field("status");
    status.textContent = job.status;
    status.className = `status status-${job.status}`;
    field("stage").textContent = job.stage ? `— ${job.stage}` : "";
    field("error").textContent = job.error || "";
    if (job.finished) {
      window.location.reload();
    } else {
      window.setTimeout(tick, 1000);
    }
  };
  window.setTimeout(tick, 1000);
}

// Forms marked data-confirm ask before they are sent (the server still asks for a password).
function confirmForms() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const section of document.querySelectorAll("[data-poll]")) { pollJob(section); }
  confirmForms();
  window.bookrecCsrfToken = csrfToken;
});
