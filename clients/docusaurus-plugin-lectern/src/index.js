// docusaurus-plugin-lectern: the Lectern chat widget on every page, and at build time a
// manifest of the docs' routes and heading ids for Lectern's ingest.
import {writeFile} from 'node:fs/promises';
import path from 'node:path';

import {MANIFEST_FILE, buildManifest, htmlReader} from './manifest.js';

const NAME = 'docusaurus-plugin-lectern';
const BOOK = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export function normalizeOptions(options) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new Error(`${NAME}: options must be an object such as {url: 'https://lectern.example.com', book: 'default'}`);
  }
  const problems = [];
  const known = new Set(['id', 'url', 'book']);
  for (const key of Object.keys(options)) {
    if (!known.has(key)) {
      problems.push(`unknown option "${key}" (the options are url and book)`);
    }
  }
  let url = options.url;
  if (typeof url !== 'string' || url === '') {
    problems.push('"url" is required: the Lectern gateway\'s address, such as https://lectern.example.com');
  } else {
    let parsed = null;
    try {
      parsed = new URL(url);
    } catch {
      problems.push(`"url" is not a URL: ${JSON.stringify(url)}`);
    }
    if (parsed && !['http:', 'https:'].includes(parsed.protocol)) {
      problems.push(`"url" must be http or https, not ${parsed.protocol}`);
    } else if (parsed && (parsed.search || parsed.hash)) {
      problems.push('"url" must not have a query or a fragment');
    }
    url = url.replace(/\/+$/, '');
  }
  const book = options.book ?? 'default';
  if (typeof book !== 'string' || !BOOK.test(book)) {
    problems.push('"book" must be 1 to 200 letters, digits, ".", "_" or "-", starting with a letter or digit');
  }
  if (problems.length) {
    throw new Error(`${NAME}: ${problems.join('; ')}`);
  }
  return {...options, url, book};
}

// Docusaurus calls this with the options from docusaurus.config before the plugin starts.
export function validateOptions({options}) {
  return normalizeOptions(options);
}

export default function pluginLectern(context, options) {
  const {url, book} = normalizeOptions(options);
  return {
    name: NAME,

    injectHtmlTags() {
      return {
        headTags: [{
          tagName: 'script',
          attributes: {
            src: `${url}/widget.js`, defer: true, 'data-lectern-url': url, 'data-lectern-book': book,
          },
        }],
      };
    },

    // One manifest per locale build, at the root of that locale's output (build/ for the
    // default locale, build/<locale>/ for the others), served with the site.
    async postBuild(props) {
      const manifest = await buildManifest(props, htmlReader(props.outDir));
      manifest.book = book;
      await writeFile(path.join(props.outDir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 1)}\n`);
    },
  };
}
