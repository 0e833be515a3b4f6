/* Lectern chat widget: one <script src=".../widget.js" data-lectern-url="https://api.example.com"
   data-lectern-book="default"> adds a floating button that opens a chat about the book.
   Everything lives in a shadow root, so the page's styles and the widget's never mix. */
(function () {
  "use strict";
  if (window.__lecternWidget) return;
  window.__lecternWidget = true;

  var script = document.currentScript;
  var API = ((script && script.dataset.lecternUrl) || (script ? new URL(script.src).origin : "")).replace(/\/$/, "");
  var BOOK = (script && script.dataset.lecternBook) || "default";
  var STORE = "lectern:" + API + ":" + BOOK;

  var css = [
    ":host{all:initial;font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1c1e21}",
    "*{box-sizing:border-box}",
    // The hidden attribute is only a default style, which any display rule would override.
    "[hidden]{display:none!important}",
    "button{font-family:inherit}",
    ".fab{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;",
    "background:#2e8555;color:#fff;font-size:26px;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483646}",
    ".fab:focus-visible,button:focus-visible,textarea:focus-visible,a:focus-visible{outline:3px solid #f5a623;outline-offset:2px}",
    ".panel{position:fixed;right:20px;bottom:88px;width:380px;max-width:calc(100vw - 24px);height:560px;",
    "max-height:calc(100vh - 110px);background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);",
    "display:flex;flex-direction:column;overflow:hidden;z-index:2147483647;transition:opacity .15s,transform .15s}",
    "header{display:flex;align-items:center;gap:8px;padding:10px 12px;background:#2e8555;color:#fff}",
    "header h2{font-size:16px;margin:0;flex:1}",
    "header button{background:transparent;border:1px solid rgba(255,255,255,.6);color:#fff;border-radius:6px;padding:3px 8px;cursor:pointer}",
    ".mode{display:none;padding:8px 12px;background:#fff8e1;border-bottom:1px solid #f0d98c;font-size:13px}",
    // The quote is shortened in script, so it is shown whole, wrapping even a long address.
    ".mode.on{display:block}.mode q{display:block;font-style:italic;margin:4px 0 6px;overflow-wrap:anywhere}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:10px}",
    ".msg{padding:8px 10px;border-radius:10px;max-width:92%;white-space:pre-wrap;word-wrap:break-word}",
    ".user{align-self:flex-end;background:#e3f2e9}.bot{align-self:flex-start;background:#f2f3f5}",
    ".sources{margin-top:6px;font-size:13px;white-space:normal}.sources a{color:#1a6b43;display:block}",
    ".vote{margin-top:6px;display:flex;gap:6px}.vote button{border:1px solid #ccc;background:#fff;color:#444;border-radius:6px;cursor:pointer;padding:3px 8px;line-height:0}",
    ".vote svg{width:16px;height:16px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}",
    ".vote button[aria-pressed=true]{background:#2e8555;color:#fff}",
    ".error{color:#b00020}",
    ".text p{margin:0 0 6px}.text p:last-child{margin-bottom:0}.text ul,.text ol{margin:4px 0 6px;padding-left:20px;white-space:normal}",
    ".text code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:#e4e6eb;border-radius:4px;padding:0 3px}",
    ".text pre{background:#e4e6eb;border-radius:6px;padding:6px 8px;overflow-x:auto;margin:4px 0}.text pre code{background:none;padding:0}",
    ".text a{color:#1a6b43}",
    "form{display:flex;gap:6px;padding:10px;border-top:1px solid #e5e5e5}",
    "textarea{flex:1;resize:none;height:44px;font:inherit;padding:8px;border:1px solid #ccc;border-radius:8px}",
    "form button{border:0;background:#2e8555;color:#fff;border-radius:8px;padding:0 14px;cursor:pointer}",
    ".ask-sel{position:absolute;z-index:2147483647;border:0;background:#2e8555;color:#fff;border-radius:6px;padding:6px 10px;cursor:pointer;font:13px system-ui,sans-serif}",
    ".resume{padding:8px 12px;background:#eef6f1;border-bottom:1px solid #cfe3d7;font-size:13px;display:flex;flex-wrap:wrap;gap:6px 8px;align-items:center}",
    ".resume span{flex:1 1 10em}",
    ".resume button,.mode button{border:1px solid #2e8555;background:#fff;color:#1a6b43;border-radius:6px;cursor:pointer;padding:2px 8px;font:inherit;white-space:nowrap}",
    // A phone: the whole screen (dvh leaves out the browser's bars), and a 16px field, which
    // iOS does not zoom into.
    "@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;max-width:100vw;height:100vh;max-height:100vh;",
    "height:100dvh;max-height:100dvh;border-radius:0}textarea{font-size:16px}}",
    "@media (prefers-reduced-motion:reduce){.panel{transition:none}}"
  ].join("");

  var host = document.createElement("div");
  host.id = "lectern-widget";
  document.body.appendChild(host);
  var root = host.attachShadow({ mode: "open" });
  root.innerHTML =
    "<style>" + css + "</style>" +
    '<button class="fab" type="button" aria-label="Ask the book" aria-expanded="false" aria-controls="lectern-panel">?</button>' +
    '<section class="panel" id="lectern-panel" role="dialog" aria-label="Ask the book" hidden>' +
    '<header><h2>Ask the book</h2><button type="button" class="new" aria-label="Start a new conversation">New</button>' +
    '<button type="button" class="close" aria-label="Close the chat">✕</button></header>' +
    '<div class="resume" hidden></div>' +
    '<div class="mode" aria-live="polite"><strong>Asking about the selection</strong><q></q>' +
    '<button type="button" class="exit-sel">Ask the whole book instead</button></div>' +
    '<div class="log" role="log" aria-live="polite" aria-label="Conversation"></div>' +
    '<form><label for="lectern-q" style="position:absolute;left:-9999px">Your question</label>' +
    '<textarea id="lectern-q" placeholder="Ask a question about the book…" aria-label="Your question"></textarea>' +
    '<button type="submit" aria-label="Send">Send</button></form></section>';

  var $ = function (sel) { return root.querySelector(sel); };
  var fab = $(".fab"), panel = $(".panel"), log = $(".log"), form = $("form"), input = $("textarea");
  var modeBar = $(".mode"), resumeBar = $(".resume");
  var selection = "";
  var busy = false;
  var saved = load();

  function load() { try { return JSON.parse(localStorage.getItem(STORE) || "null"); } catch (e) { return null; } }
  function save(value) { saved = value; try { localStorage.setItem(STORE, JSON.stringify(value)); } catch (e) { /* private mode */ } }

  function open() {
    panel.hidden = false; fab.setAttribute("aria-expanded", "true");
    if (saved && saved.conversation_id && !log.childElementCount) offerResume();
    input.focus();
  }
  function close() { panel.hidden = true; fab.setAttribute("aria-expanded", "false"); fab.focus(); }
  fab.addEventListener("click", function () { panel.hidden ? open() : close(); });
  $(".close").addEventListener("click", close);
  $(".new").addEventListener("click", function () { save(null); log.textContent = ""; resumeBar.hidden = true; input.focus(); });
  root.addEventListener("keydown", function (e) { if (e.key === "Escape" && !panel.hidden) { e.preventDefault(); close(); } });

  function offerResume() {
    resumeBar.hidden = false;
    resumeBar.innerHTML = "<span>Continue your last conversation?</span>" +
      '<button type="button" class="yes">Resume</button><button type="button" class="no">Start new</button>';
    resumeBar.querySelector(".yes").addEventListener("click", function () { resumeBar.hidden = true; resume(); });
    resumeBar.querySelector(".no").addEventListener("click", function () { resumeBar.hidden = true; save(null); input.focus(); });
  }

  function resume() {
    call(API + "/v1/conversations/" + encodeURIComponent(saved.conversation_id),
      { headers: { "X-Conversation-Token": saved.conversation_token } })
      .then(function (r) { if (!r.ok) throw new Error("gone"); return r.json(); })
      .then(function (body) {
        body.messages.forEach(function (m) {
          var el = bubble(m.role === "user" || m.role === "ROLE_USER" ? "user" : "bot", m.content);
          if (m.sources && m.sources.length) showSources(el, m.sources);
          if (m.role !== "user" && m.role !== "ROLE_USER") addVotes(el, m.message_id);
        });
        input.focus();
      })
      .catch(function (err) {
        // Expired or unknown: start afresh. Not reached: keep it for the next visit and say why.
        if (!err.network) { save(null); return; }
        explain(err).then(function (why) { var el = bubble("bot", ""); showError(el.querySelector(".text"), why); });
      });
  }

  // fetch rejects with a bare TypeError ("Failed to fetch") both when the gateway cannot be
  // reached and when the browser withholds its answer because the gateway does not allow this
  // page's origin (CORS). A no-cors request tells the two apart: it reaches a running gateway
  // whatever its CORS settings, and its opaque answer needs no permission to arrive.
  function call(url, options) {
    return fetch(url, options).catch(function (err) { err.network = true; throw err; });
  }
  function explain(err) {
    if (err.lost) return Promise.resolve("The connection to Lectern was lost. Please try again.");
    if (!err.network) return Promise.resolve("Sorry: " + err.message);
    var site = location.origin, api = new URL(API || location.href, location.href).origin;
    return fetch(API + "/widget.js", { mode: "no-cors", cache: "no-store" }).then(function () {
      if (api === site) return "The connection to Lectern was lost. Please try again.";
      // Meant for whoever runs the site: the reader can only pass it on.
      var why = "This site (" + site + ") is not allowed to ask Lectern at " + api + ". Site owner: add " +
        site + " to LECTERN_CORS_ORIGINS on the Lectern gateway.";
      if (window.console) console.error("Lectern widget: " + why);
      return why;
    }, function () { return "The Lectern service at " + api + " is unreachable. Please try again later."; });
  }
  function showError(body, message) { body.classList.add("error"); body.textContent = message; }

  // Answers are Markdown from the book. They are rendered by building DOM nodes from a small
  // subset (paragraphs, lists, code, inline code, bold, links), never through innerHTML, so no
  // text can become markup; a link is kept only when it leads to http(s) or a relative address.
  var SAFE_URL = /^(https?:\/\/|\/(?!\/)|\.{1,2}\/|#)|^[^:\/?#]+(\/|$)/i;
  function inline(parent, text) {
    var re = /`([^`\n]+)`|\*\*([^*\n]+)\*\*|\[([^\]\n]+)\]\(([^()\s]+)\)/g, last = 0, m;
    function plain(t) { if (t) parent.appendChild(document.createTextNode(t.replace(/`/g, ""))); }
    while ((m = re.exec(text))) {
      plain(text.slice(last, m.index));
      var node;
      if (m[1] !== undefined) { node = document.createElement("code"); node.textContent = m[1]; }
      else if (m[2] !== undefined) { node = document.createElement("strong"); inline(node, m[2]); }
      else if (SAFE_URL.test(m[4])) { node = document.createElement("a"); node.href = m[4]; inline(node, m[3]); }
      else { node = document.createTextNode(m[3].replace(/`/g, "")); }
      parent.appendChild(node);
      last = re.lastIndex;
    }
    plain(text.slice(last));
  }
  function renderMarkdown(el, text) {
    while (el.firstChild) el.removeChild(el.firstChild);
    var lines = String(text || "").split("\n"), i = 0, LIST = /^\s*(?:([-*+])|(\d+)[.)])\s+(.*)$/;
    while (i < lines.length) {
      var line = lines[i];
      if (!line.trim()) { i++; continue; }
      var opening = /^\s*(`{3,}|~{3,})/.exec(line);
      if (opening) {
        // Closed by a line of the same character, at least as long (a ````md block holds ``` lines).
        var fence = opening[1], code = [];
        var closing = new RegExp("^\\s*\\" + fence[0] + "{" + fence.length + ",}\\s*$");
        for (i++; i < lines.length && !closing.test(lines[i]); i++) code.push(lines[i]);
        i++;
        var pre = document.createElement("pre"), c = document.createElement("code");
        c.textContent = code.join("\n"); pre.appendChild(c); el.appendChild(pre);
        continue;
      }
      var item = LIST.exec(line);
      if (item) {
        var list = document.createElement(item[1] ? "ul" : "ol");
        if (!item[1] && Number(item[2]) !== 1) list.start = Number(item[2]);  // a quote from step 3 on
        for (; i < lines.length && (item = LIST.exec(lines[i])); i++) {
          var li = document.createElement("li"); inline(li, item[3]); list.appendChild(li);
        }
        el.appendChild(list);
        continue;
      }
      var para = [];
      for (; i < lines.length && lines[i].trim() && !LIST.test(lines[i]) && !/^\s*(```|~~~)/.test(lines[i]); i++) para.push(lines[i]);
      var p = document.createElement("p"); inline(p, para.join("\n")); el.appendChild(p);
    }
  }

  function bubble(kind, text) {
    var el = document.createElement("div");
    el.className = "msg " + kind;
    var body = document.createElement("div");
    body.className = "text";
    if (kind === "bot") renderMarkdown(body, text); else body.textContent = text || "";
    el.appendChild(body);
    log.appendChild(el);
    log.scrollTop = log.scrollHeight;
    return el;
  }

  function showSources(el, sources) {
    var box = document.createElement("div");
    box.className = "sources";
    box.setAttribute("aria-label", "Sources");
    sources.forEach(function (s) {
      var a = document.createElement("a");
      a.href = s.url;
      a.textContent = "[" + s.n + "] " + (s.heading_path || []).join(" › ");
      box.appendChild(a);
    });
    el.appendChild(box);
  }

  // Thumbs drawn inline (the Feather icon, MIT): emoji need a font many machines lack, and then
  // show as nothing or as two identical boxes. Down is up turned half a circle.
  var THUMB = '<path d="M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3"/>';
  function thumb(turned, label) {
    return '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><title>' + label + "</title>" +
      (turned ? '<g transform="rotate(180 12 12)">' + THUMB + "</g>" : THUMB) + "</svg>";
  }

  function addVotes(el, messageId) {
    if (!messageId || !saved) return;
    var box = document.createElement("div");
    box.className = "vote";
    [["up", false, "This answer helped"], ["down", true, "This answer did not help"]].forEach(function (v) {
      var b = document.createElement("button");
      b.type = "button"; b.innerHTML = thumb(v[1], v[2]); b.setAttribute("aria-label", v[2]); b.setAttribute("aria-pressed", "false");
      b.dataset.rating = v[0];
      b.addEventListener("click", function () {
        fetch(API + "/v1/feedback", {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-Conversation-Token": saved.conversation_token },
          body: JSON.stringify({ conversation_id: saved.conversation_id, message_id: messageId, rating: v[0] })
        }).then(function (r) {
          if (r.ok) box.querySelectorAll("button").forEach(function (x) { x.setAttribute("aria-pressed", String(x === b)); });
        }).catch(function () { /* not sent: the button stays unpressed */ });
      });
      box.appendChild(b);
    });
    el.appendChild(box);
  }

  // The bar quotes the start of the selection as a reminder; the whole of it is sent.
  var QUOTE_CHARS = 200;
  function setSelection(text) {
    selection = text;
    modeBar.classList.toggle("on", !!text);
    var quote = text.length > QUOTE_CHARS ? text.slice(0, QUOTE_CHARS).replace(/\s+\S*$/, "") + "…" : text;
    modeBar.querySelector("q").textContent = quote;
  }
  $(".exit-sel").addEventListener("click", function () { setSelection(""); input.focus(); });

  // Highlight text on the page -> "Ask about the selection".
  var askSel = document.createElement("button");
  askSel.className = "ask-sel"; askSel.type = "button"; askSel.textContent = "Ask about the selection";
  askSel.hidden = true;
  root.appendChild(askSel);
  document.addEventListener("mouseup", function (e) {
    if (e.composedPath && e.composedPath().indexOf(host) >= 0) return;
    var sel = window.getSelection(); var text = sel ? sel.toString().trim() : "";
    if (text.length < 3) { askSel.hidden = true; return; }
    var rect = sel.getRangeAt(0).getBoundingClientRect();
    askSel.hidden = false;
    // Under the selection's start, but never past the right edge (a phone's narrow screen).
    var left = Math.max(0, Math.min(rect.left, document.documentElement.clientWidth - askSel.offsetWidth - 8));
    askSel.style.top = (window.scrollY + rect.bottom + 6) + "px";
    askSel.style.left = (window.scrollX + left) + "px";
    askSel.onclick = function () { askSel.hidden = true; setSelection(text); open(); };
  });

  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text || busy) return;
    input.value = "";
    ask(text);
  });

  // The reader's docs version and locale, as Docusaurus renders them on every doc page
  // (<meta name="docusaurus_version">, <meta name="docusaurus_locale">, <html lang>). Read when
  // asking, not at load: client-side navigation changes them without reloading the widget.
  function edition() {
    function meta(name) {
      var el = document.querySelector('meta[name="' + name + '"]');
      return (el && el.getAttribute("content") || "").trim();
    }
    return { version: meta("docusaurus_version"),
             locale: meta("docusaurus_locale") || (document.documentElement.getAttribute("lang") || "").trim() };
  }

  function ask(text) {
    busy = true;
    bubble("user", text);
    var el = bubble("bot", "");
    var body = el.querySelector(".text");
    var streamed = "";
    var payload = { message: text, book: BOOK, page: { url: location.pathname, title: document.title } };
    var here = edition();
    if (here.version) payload.version = here.version;
    if (here.locale) payload.locale = here.locale;
    if (selection) { payload.mode = "selection"; payload.context = selection; }
    var headers = { "Content-Type": "application/json", "Accept": "text/event-stream" };
    if (saved && saved.conversation_id) { payload.conversation_id = saved.conversation_id; headers["X-Conversation-Token"] = saved.conversation_token; }
    var messageId = "";
    call(API + "/v1/chat", { method: "POST", headers: headers, body: JSON.stringify(payload) })
      .then(function (r) {
        if (!r.ok) {
          // A proxy in front of the gateway may answer in HTML: then the status is all there is.
          return r.json().catch(function () { return {}; }).then(function (j) {
            throw new Error((j.error && j.error.message) || r.statusText || "HTTP " + r.status);
          });
        }
        var reader = r.body.getReader(); var decoder = new TextDecoder(); var buffer = "";
        function pump() {
          return reader.read().catch(function (err) { err.lost = true; throw err; }).then(function (chunk) {
            if (chunk.done) return;
            buffer += decoder.decode(chunk.value, { stream: true });
            var parts = buffer.split("\n\n"); buffer = parts.pop();
            parts.forEach(function (raw) {
              var ev = "message", data = "";
              raw.split("\n").forEach(function (line) {
                if (line.indexOf("event:") === 0) ev = line.slice(6).trim();
                else if (line.indexOf("data:") === 0) data += line.slice(5).trim();
              });
              if (!data) return;
              var d = JSON.parse(data);
              if (ev === "meta") { messageId = d.message_id; save({ conversation_id: d.conversation_id, conversation_token: d.conversation_token }); }
              else if (ev === "token") { streamed += d.text; renderMarkdown(body, streamed); log.scrollTop = log.scrollHeight; }
              else if (ev === "sources") { el._sources = d.sources; }
              else if (ev === "done") { renderMarkdown(body, d.answer); if (el._sources && el._sources.length) showSources(el, el._sources); addVotes(el, messageId); }
              else if (ev === "error") { showError(body, d.message); }
            });
            return pump();
          });
        }
        return pump();
      })
      .catch(function (err) { return explain(err).then(function (why) { showError(body, why); }); })
      .then(function () { busy = false; input.focus(); });
  }
})();
