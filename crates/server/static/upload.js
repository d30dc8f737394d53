// Upload with progress: the form posts as usual (it works without this script);
// with it, the file goes by XMLHttpRequest so the bar can show the bytes sent.
// The server answers with a redirect to the new version's page, or with the
// page and its error message, which is shown in place.
(function () {
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var box = document.getElementById("upload-progress-box");
    var bar = document.getElementById("upload-progress");
    var text = document.getElementById("upload-progress-text");
    var err = document.getElementById("upload-error");
    var button = document.getElementById("upload-submit");
    err.hidden = true;
    box.hidden = false;
    button.disabled = true;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        var pct = Math.floor((e.loaded / e.total) * 100);
        bar.value = pct;
        text.textContent = pct + "%";
      }
    });
    xhr.upload.addEventListener("load", function () {
      bar.value = 100;
      text.textContent = "100% · " + (form.dataset.importing || "…");
    });
    xhr.addEventListener("load", function () {
      if (xhr.status < 300 && xhr.responseURL.indexOf("/console/datasets/versions/") >= 0) {
        window.location.assign(xhr.responseURL);
        return;
      }
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var msg = doc.getElementById("form-error");
      err.textContent = msg ? msg.textContent : xhr.status + " " + xhr.statusText;
      err.hidden = false;
      box.hidden = true;
      button.disabled = false;
    });
    xhr.addEventListener("error", function () {
      err.textContent = "network error";
      err.hidden = false;
      box.hidden = true;
      button.disabled = false;
    });
    xhr.send(new FormData(form));
  });
})();
