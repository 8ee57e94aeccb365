// The only script of the explorer: follows a running explanation job and shows its result.
"use strict";

function followJob(box) {
  const url = box.dataset.statusUrl;
  const stage = document.getElementById("job-stage");
  const seconds = document.getElementById("job-seconds");
  const bar = document.getElementById("job-progress");
  const poll = () => {
    fetch(url, { headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((status) => {
        stage.textContent = status.stage;
        seconds.textContent = status.seconds;
        if (status.fraction === null) {
          bar.removeAttribute("value");
        } else {
          bar.value = status.fraction;
        }
        if (status.state === "done" || status.state === "failed") {
          window.location.reload();
        } else {
          window.setTimeout(poll, 500);
        }
      })
      .catch(() => window.setTimeout(poll, 2000));
  };
  window.setTimeout(poll, 300);
}

document.addEventListener("DOMContentLoaded", () => {
  const job = document.getElementById("job");
  if (job) {
    followJob(job);
  }
});
