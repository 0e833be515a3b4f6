// The gap report page: every value from the server is set as text (never as HTML), and only
// http(s) links become hrefs.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  };
  const link = (href, text) => {
    let url;
    try { url = new URL(href, location.href); } catch (e) { return el("span", text); }
    if (url.protocol !== "http:" && url.protocol !== "https:") return el("span", text);
    const a = el("a", text);
    a.href = url.href;
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    return a;
  };
  $("query").addEventListener("submit", async (event) => {
    event.preventDefault();
    const params = new URLSearchParams({ days: $("days").value || "30" });
    if ($("book").value) params.set("book", $("book").value);
    $("status").textContent = "Loading…";
    $("status").className = "";
    $("topics").replaceChildren();
    let reply, body;
    try {
      reply = await fetch("/v1/analytics/gaps?" + params, {
        headers: { Authorization: "Bearer " + $("token").value, Accept: "application/json" },
        cache: "no-store",
      });
      body = await reply.json();
    } catch (e) {
      $("status").textContent = "The server did not answer.";
      $("status").className = "error";
      return;
    }
    if (!reply.ok) {
      $("status").textContent = (body && body.error && body.error.message) || ("Error " + reply.status);
      $("status").className = "error";
      return;
    }
    $("status").textContent = body.questions + " questions in " + body.topics.length + " topics over "
      + body.days + " days.";
    for (const topic of body.topics) {
      const box = el("section", undefined, "topic");
      box.append(el("h2", topic.questions[0]));
      box.append(el("p", topic.count + " asked (" + topic.trend + ": " + topic.earlier + " then " + topic.recent
        + "); refused " + topic.refused + ", not grounded " + topic.ungrounded + ", rated down " + topic.downvoted
        + (topic.book ? "; book " + topic.book : ""), "meta"));
      const asked = el("ul");
      for (const q of topic.questions) asked.append(el("li", q));
      box.append(asked);
      if (topic.sections.length) {
        box.append(el("p", "Closest sections:", "meta"));
        const list = el("ul");
        for (const s of topic.sections) {
          const item = el("li");
          item.append(link(s.url, s.heading || s.title || s.file_path));
          if (s.edit_url) { item.append(" · "); item.append(link(s.edit_url, "edit this page")); }
          list.append(item);
        }
        box.append(list);
      }
      $("topics").append(box);
    }
  });
})();
