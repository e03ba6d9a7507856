// Genpon web UI: drag-and-drop upload and small conveniences. No build step, no framework.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var ja = document.documentElement.lang !== "en";

  document.querySelectorAll("[data-back]").forEach(function (a) {
    a.addEventListener("click", function (ev) {
      if (history.length > 1) { ev.preventDefault(); history.back(); }
    });
  });

  document.querySelectorAll("section.upload").forEach(function (section) {
    var form = section.querySelector("form.dropzone");
    var results = section.querySelector(".upload-results");
    var url = section.getAttribute("data-upload-url");
    var titleInput = form.querySelector('input[name="title"]');

    function line(cls, text, link, linkText) {
      var li = document.createElement("li");
      li.className = cls;
      li.appendChild(document.createTextNode(text + " "));
      if (link) {
        var a = document.createElement("a");
        a.href = link; a.textContent = linkText; li.appendChild(a);
      }
      results.appendChild(li);
      return li;
    }

    function send(file) {
      var data = new FormData();
      data.append("csrf", csrf);
      if (titleInput && titleInput.value && form.__single) { data.append("title", titleInput.value); }
      data.append("file", file, file.name);
      var pending = line("muted", (ja ? "送信中: " : "Uploading: ") + file.name);
      return fetch(url, {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": csrf }
      }).then(function (r) {
        return r.json().then(function (body) { return { ok: r.ok, body: body }; });
      }).then(function (res) {
        pending.remove();
        if (!res.ok) {
          var msg = (res.body.error && res.body.error.message) || (ja ? "登録できませんでした。" : "Upload failed.");
          line("error", file.name + ": " + msg);
          return;
        }
        var b = res.body;
        var li = line(b.is_copy ? "copyof" : "notice", file.name + ": " + b.message, b.url, ja ? "文書を開く" : "Open");
        li.setAttribute("data-testid", b.is_copy ? "upload-copy" : "upload-original");
        if (b.is_copy && b.original) {
          if (b.original.visible) {
            var a = document.createElement("a");
            a.href = b.original.url;
            a.textContent = (ja ? " ／ 原本: " : " / original: ") + b.original.title + "（" + b.original.folder_path + "）";
            li.appendChild(a);
          } else {
            li.appendChild(document.createTextNode(ja ? " （原本は閲覧できない場所にあります）" : " (the original is in a folder you cannot open)"));
          }
        }
      }).catch(function () {
        pending.remove();
        line("error", file.name + ": " + (ja ? "通信に失敗しました。" : "Network error."));
      });
    }

    // Replace the document table with the server's fresh rendering (no full reload, so the
    // upload messages stay on screen).
    function refreshList() {
      var table = document.querySelector('[data-testid="folder-docs"]');
      if (!table) { return; }
      fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var page = new DOMParser().parseFromString(html, "text/html");
          var fresh = page.querySelector('[data-testid="folder-docs"]');
          if (fresh) { table.replaceWith(fresh); }
          // the count beside the heading is outside the table: refresh it too
          var count = document.querySelector('[data-testid="doc-count"]');
          var freshCount = page.querySelector('[data-testid="doc-count"]');
          if (count && freshCount) { count.textContent = freshCount.textContent; }
        });
    }

    function sendAll(files) {
      form.__single = files.length === 1;
      var chain = Promise.resolve();
      Array.prototype.forEach.call(files, function (f) { chain = chain.then(function () { return send(f); }); });
      return chain;
    }

    ["dragenter", "dragover"].forEach(function (t) {
      form.addEventListener(t, function (ev) { ev.preventDefault(); form.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (t) {
      form.addEventListener(t, function (ev) { ev.preventDefault(); form.classList.remove("over"); });
    });
    form.addEventListener("drop", function (ev) {
      if (ev.dataTransfer && ev.dataTransfer.files.length) { sendAll(ev.dataTransfer.files).then(refreshList); }
    });
    form.addEventListener("submit", function (ev) {
      var input = form.querySelector('input[type="file"]');
      if (!input.files.length) { return; }
      ev.preventDefault();
      sendAll(input.files).then(function () {
        input.value = "";
        if (titleInput) { titleInput.value = ""; }
        refreshList();
      });
    });
  });
})();
