// The build manifest: every doc's permalink, version, locale, source file and heading ids,
// read from the docs plugin's loaded content and from the HTML the build wrote.
// Lectern's ingest takes routes and anchors from it instead of recomputing them.
import {readFile} from 'node:fs/promises';
import path from 'node:path';

export const MANIFEST_FILE = 'lectern-manifest.json';
export const MANIFEST_SCHEMA = 1;
const DOCS_PLUGIN = 'docusaurus-plugin-content-docs';

// @docusaurus/utils-common applyTrailingSlash: the site's trailingSlash applied to a route;
// undefined leaves routes as plugins made them; "/" and the baseUrl are never changed.
export function applyTrailingSlash(route, {trailingSlash, baseUrl}) {
  if (route.startsWith('#') || trailingSlash === undefined || trailingSlash === null) {
    return route;
  }
  const [pathname] = route.split(/[#?]/);
  if (pathname === '/' || pathname === baseUrl) {
    return route;
  }
  const changed = trailingSlash
    ? (pathname.endsWith('/') ? pathname : `${pathname}/`)
    : pathname.replace(/\/$/, '');
  return route.replace(pathname, changed);
}

// @docusaurus/core lib/ssg/ssgUtils.js pathnameToFilename (with its removeBaseUrl): the HTML
// file a route is written to, relative to the locale's output folder.
export function routeFile(route, {trailingSlash, baseUrl}) {
  const pathname = baseUrl === '/' ? route : route.replace(new RegExp(`^${escapeRegExp(baseUrl)}`), '/');
  const name = pathname.replace(/^[/\\]/, '');
  if (/\.html?$/i.test(name)) {
    return name;
  }
  if (trailingSlash === undefined || trailingSlash === null || name === '' || name.endsWith('/') || trailingSlash) {
    return path.posix.join(name, 'index.html');
  }
  return `${name}.html`;
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// React escapes attribute values with these five entities; numeric ones are decoded too.
const ENTITIES = {amp: '&', quot: '"', lt: '<', gt: '>', apos: "'"};

export function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

// The ids of the headings of a built doc page, in page order. Only the <article> is read:
// that is where the theme renders the doc (DocItem/Layout); navbars and footers hold none
// of its headings. Docusaurus renders the H1 without an id, so it is absent, as in the page.
export function headingIds(html) {
  const start = html.indexOf('<article');
  const end = html.lastIndexOf('</article>');
  const body = start >= 0 && end > start ? html.slice(start, end) : html;
  const ids = [];
  for (const match of body.matchAll(/<h[1-6]\b([^>]*)>/gi)) {
    const id = /\sid="([^"]*)"/i.exec(match[1]);
    if (id) {
      ids.push(decodeEntities(id[1]));
    }
  }
  return ids;
}

function siteRelative(source, siteDir) {
  // Doc sources are "@site/docs/intro.md"; anything else is made relative to the site.
  const rel = source.startsWith('@site/') ? source.slice('@site/'.length) : path.relative(siteDir, source);
  return rel.split(path.sep).join('/');
}

// The source relative to its version's docs folder (as Lectern's chunks name it), and whether
// it came from the locale's translations (i18n/<locale>/…) rather than the untranslated docs
// Docusaurus falls back to.
function contentRelative(sourceFile, version, siteDir) {
  const abs = path.resolve(siteDir, sourceFile);
  for (const [dir, localized] of [[version.contentPathLocalized, true], [version.contentPath, false]]) {
    if (dir) {
      const rel = path.relative(dir, abs);
      if (!rel.startsWith('..') && !path.isAbsolute(rel)) {
        return {file: rel.split(path.sep).join('/'), localized};
      }
    }
  }
  return {file: sourceFile, localized: false};
}

// The manifest of one locale's build. `props` is what postBuild receives (Props & {content});
// `readHtml(file)` gives a built page's HTML (a function, so tests need no build folder).
export async function buildManifest(props, readHtml) {
  const {siteDir, baseUrl, i18n, siteConfig, routesPaths, plugins} = props;
  const options = {trailingSlash: siteConfig.trailingSlash, baseUrl};
  const routes = new Set(routesPaths);
  const docs = [];
  const versions = [];
  for (const plugin of plugins) {
    if (plugin.name !== DOCS_PLUGIN || !plugin.content) {
      continue;
    }
    const pluginId = plugin.options?.id ?? 'default';
    for (const version of plugin.content.loadedVersions) {
      versions.push({
        plugin: pluginId, name: version.versionName, label: version.label,
        path: applyTrailingSlash(version.path, options), isLast: version.isLast,
      });
      for (const doc of version.docs) {
        // The route core registered: the permalink with the site's trailingSlash applied.
        const permalink = [applyTrailingSlash(doc.permalink, options), doc.permalink]
          .find((route) => routes.has(route)) ?? applyTrailingSlash(doc.permalink, options);
        const source = siteRelative(doc.source, siteDir);
        const html = await readHtml(routeFile(permalink, options));
        docs.push({
          plugin: pluginId,
          version: version.versionName,
          locale: i18n.currentLocale,
          id: doc.id,
          source,
          ...contentRelative(source, version, siteDir),
          permalink,
          unlisted: Boolean(doc.unlisted),
          ids: html === null ? null : headingIds(html),
        });
      }
    }
  }
  return {
    lectern_manifest: MANIFEST_SCHEMA,
    locale: i18n.currentLocale,
    defaultLocale: i18n.defaultLocale,
    locales: i18n.locales,
    baseUrl,
    trailingSlash: siteConfig.trailingSlash ?? null,
    versions,
    docs,
  };
}

// readHtml for a real build: null when the page was not written (it then has no ids).
export function htmlReader(outDir) {
  return async (file) => {
    try {
      return await readFile(path.join(outDir, file), 'utf8');
    } catch (error) {
      if (error.code === 'ENOENT') {
        return null;
      }
      throw error;
    }
  };
}
