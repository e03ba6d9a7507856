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

  // Thumbnails that cannot be drawn (encrypted PDF, broken image, no right to see it) disappear.
  document.querySelectorAll("img.thumb").forEach(function (img) {
    function hide() { img.remove(); }
    if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) { hide(); }
    else { img.addEventListener("error", hide); }
  });

  // A search result opens with the query, so that the document's text shows the terms marked.
  var query = document.querySelector('[data-testid="q"]');
  if (query && query.value) {
    document.querySelectorAll('.hit h3 a[href^="/documents/"]').forEach(function (a) {
      a.href = a.getAttribute("href") + "?q=" + encodeURIComponent(query.value);
    });
  }

  // Document viewer: page images rendered by the server, with page navigation and zoom.
  // Without this script the previous/next links still work (full page loads).
  document.querySelectorAll(".viewer-bar").forEach(function (bar) {
    var doc = bar.getAttribute("data-doc");
    var pages = parseInt(bar.getAttribute("data-pages"), 10) || 1;
    var widths = (bar.getAttribute("data-widths") || "800").split(",").map(function (w) { return parseInt(w, 10); });
    var label = bar.getAttribute("data-page-label") || "ページ";
    var img = bar.parentNode.querySelector('[data-testid="page-image"]');
    var box = img.closest(".viewer-page");
    var input = bar.querySelector('[data-viewer="page"]');
    var prev = bar.querySelector('[data-viewer="prev"]');
    var next = bar.querySelector('[data-viewer="next"]');
    var zin = bar.querySelector('[data-viewer="zoom-in"]');
    var zout = bar.querySelector('[data-viewer="zoom-out"]');
    var zlabel = bar.querySelector('[data-viewer="zoom"]');
    var page = parseInt(input.value, 10) || 1;
    var zoom = 0;  // index into widths; 0 fits the page to the window
    [zin, zout, zlabel].forEach(function (el) { el.hidden = false; });

    function show() {
      var width = widths[zoom];
      img.src = "/api/v1/documents/" + doc + "/pages/" + page + ".png?width=" + width;
      img.alt = ja ? page + " ページ目（全 " + pages + " ページ）" : "Page " + page + " of " + pages;
      input.value = page;
      prev.setAttribute("aria-disabled", page <= 1 ? "true" : "false");
      next.setAttribute("aria-disabled", page >= pages ? "true" : "false");
      prev.href = link(Math.max(1, page - 1));
      next.href = link(Math.min(pages, page + 1));
      box.classList.toggle("fit", zoom === 0);
      zlabel.textContent = zoom === 0 ? (ja ? "幅に合わせる" : "Fit") : width + "px";
      zout.disabled = zoom === 0;
      zin.disabled = zoom === widths.length - 1;
      var params = new URLSearchParams(location.search);
      params.delete("msg");
      params.set("page", page);
      history.replaceState(null, "", "?" + params.toString());
      if (hits && hits.getAttribute("data-q") && page !== shownPage) { mark(page); }
    }
    // The search terms on the page (OCR'd pages): boxes from the server, drawn over the image.
    var hits = box.querySelector("svg.hits");
    var shownPage = page;  // the page whose boxes the server put in the HTML
    function mark(n) {
      shownPage = n;
      while (hits.firstChild) { hits.removeChild(hits.firstChild); }
      var url = "/api/v1/documents/" + doc + "/pages/" + n + "/highlights?q=" + encodeURIComponent(hits.getAttribute("data-q"));
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; }).then(function (body) {
        if (!body || n !== page) { return; }
        var status = bar.parentNode.querySelector('[data-testid="hit-status"]');
        var q = body.query, k = body.boxes.length;
        if (status) {
          status.textContent = !body.positions
            ? (ja ? "このページには文字の位置情報がないため、検索語を画像上に表示できません。" : "This page has no word positions: the search terms cannot be marked on it.")
            : k ? (ja ? "「" + q + "」をこのページで " + k + " か所表示しています。" : k + " match(es) of “" + q + "” marked on this page.")
            : (ja ? "「" + q + "」はこのページにありません。" : "“" + q + "” is not on this page.");
        }
        body.boxes.forEach(function (b) {
          var r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
          r.setAttribute("x", Math.round(b.x * 10000));
          r.setAttribute("y", Math.round(b.y * 10000));
          r.setAttribute("width", Math.round(b.w * 10000));
          r.setAttribute("height", Math.round(b.h * 10000));
          r.setAttribute("data-testid", "hit-box");
          hits.appendChild(r);
        });
      });
    }
    function link(n) {
      var params = new URLSearchParams(location.search);
      params.delete("msg");
      params.set("page", n);
      return "?" + params.toString();
    }
    function go(n) {
      n = Math.min(pages, Math.max(1, n));
      if (n !== page) { page = n; show(); }
    }
    prev.addEventListener("click", function (ev) { ev.preventDefault(); go(page - 1); });
    next.addEventListener("click", function (ev) { ev.preventDefault(); go(page + 1); });
    input.addEventListener("change", function () { go(parseInt(input.value, 10) || 1); });
    input.setAttribute("aria-label", label);
    zin.addEventListener("click", function () { if (zoom < widths.length - 1) { zoom += 1; show(); } });
    zout.addEventListener("click", function () { if (zoom > 0) { zoom -= 1; show(); } });
    // Keyboard: ← → (or PageUp/PageDown) turn pages, + and - zoom, while the viewer has focus.
    box.tabIndex = 0;
    box.setAttribute("aria-label", ja ? "ページ画像（← → でページ移動、＋ − で拡大縮小）" : "Page image (← → to turn pages, + − to zoom)");
    box.addEventListener("keydown", function (ev) {
      if (ev.key === "ArrowRight" || ev.key === "PageDown") { ev.preventDefault(); go(page + 1); }
      else if (ev.key === "ArrowLeft" || ev.key === "PageUp") { ev.preventDefault(); go(page - 1); }
      else if (ev.key === "+" || ev.key === "=") { ev.preventDefault(); zin.click(); }
      else if (ev.key === "-") { ev.preventDefault(); zout.click(); }
    });
    box.classList.add("fit");
    show();
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

// Search filters: a <details> that starts folded (a phone shows the results first) and opens
// by itself on a screen wide enough to show it beside the results.
(function () {
  "use strict";
  var wide = window.matchMedia ? window.matchMedia("(min-width: 901px)") : null;
  document.querySelectorAll("details[data-facets]").forEach(function (box) {
    if (wide && wide.matches) { box.open = true; }
  });

  // Bulk actions on a folder's documents: "select all" and the count of selected documents.
  document.querySelectorAll("[data-select-all]").forEach(function (all) {
    var form = document.getElementById(all.getAttribute("data-select-all"));
    if (!form) { return; }
    var boxes = function () { return form.ownerDocument.querySelectorAll('input[name="document_id"][form="' + form.id + '"]'); };
    all.addEventListener("change", function () {
      boxes().forEach(function (b) { b.checked = all.checked; });
    });
  });
})();
