// The real Mermaid parser (mermaid.min.js, the browser bundle) under jsdom: reads a JSON list of
// diagram texts on stdin, writes a JSON list of what Mermaid made of each: the diagram type, or
// the parse error; for a flowchart its vertices (id, label text as Mermaid keeps it, classes)
// and edges. Usage: node mermaid-parse.cjs MERMAID_MIN_JS JSDOM_MODULE_DIR < diagrams.json
'use strict';
const fs = require('fs');
const { JSDOM } = require(process.argv[3]);
const dom = new JSDOM('<!doctype html><html><body></body></html>', { runScripts: 'dangerously' });
const script = dom.window.document.createElement('script');
script.textContent = fs.readFileSync(process.argv[2], 'utf8');
dom.window.document.body.appendChild(script);
const mermaid = dom.window.mermaid;
mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });

async function one(text) {
  try {
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
    const out = { ok: true, type: diagram.type };
    const db = diagram.db;
    if (typeof db.getVertices === 'function') {
      out.vertices = [...db.getVertices().values()].map((v) => ({ id: v.id, text: v.text, classes: v.classes }));
      out.edges = db.getEdges().map((e) => [e.start, e.end]);
    }
    return out;
  } catch (error) {
    return { ok: false, error: String((error && error.message) || error).slice(0, 1000) };
  }
}

(async () => {
  const texts = JSON.parse(fs.readFileSync(0, 'utf8'));
  const results = [];
  for (const text of texts) results.push(await one(text));
  process.stdout.write(JSON.stringify(results));
})();
