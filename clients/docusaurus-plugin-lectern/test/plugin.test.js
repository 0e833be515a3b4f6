// Unit tests of the plugin's pure parts (node --test); the real build is tested by
// tests/test_docusaurus_build.py.
import assert from 'node:assert/strict';
import test from 'node:test';

import pluginLectern, {normalizeOptions, validateOptions} from '../src/index.js';
import {applyTrailingSlash, buildManifest, headingIds, routeFile} from '../src/manifest.js';

test('options: url is required, trailing slashes dropped, book defaults to "default"', () => {
  assert.deepEqual(normalizeOptions({url: 'https://lectern.example.com/'}),
    {url: 'https://lectern.example.com', book: 'default'});
  assert.deepEqual(validateOptions({options: {url: 'http://127.0.0.1:8080', book: 'robot-1.0'}}),
    {url: 'http://127.0.0.1:8080', book: 'robot-1.0'});
  assert.throws(() => normalizeOptions({}), /"url" is required/);
  assert.throws(() => normalizeOptions({url: 'lectern.example.com'}), /"url" is not a URL/);
  assert.throws(() => normalizeOptions({url: 'ftp://x.example'}), /http or https/);
  assert.throws(() => normalizeOptions({url: 'https://x.example/?a=1'}), /query or a fragment/);
  assert.throws(() => normalizeOptions({url: 'https://x.example', book: 'a b'}), /"book" must be/);
  assert.throws(() => normalizeOptions({url: 'https://x.example', books: 'a'}), /unknown option "books"/);
  assert.throws(() => normalizeOptions(null), /options must be an object/);
});

test('the widget script tag carries the url and the book', () => {
  const plugin = pluginLectern({}, {url: 'https://lectern.example.com/', book: 'guide'});
  assert.deepEqual(plugin.injectHtmlTags().headTags, [{
    tagName: 'script',
    attributes: {
      src: 'https://lectern.example.com/widget.js', defer: true,
      'data-lectern-url': 'https://lectern.example.com', 'data-lectern-book': 'guide',
    },
  }]);
});

test('trailingSlash and output files follow @docusaurus/core', () => {
  const off = {trailingSlash: false, baseUrl: '/robot/'};
  assert.equal(applyTrailingSlash('/robot/docs/', off), '/robot/docs');
  assert.equal(applyTrailingSlash('/robot/', off), '/robot/');
  assert.equal(applyTrailingSlash('/robot/docs/a', {trailingSlash: true, baseUrl: '/robot/'}), '/robot/docs/a/');
  assert.equal(applyTrailingSlash('/docs/a/', {trailingSlash: undefined, baseUrl: '/'}), '/docs/a/');
  assert.equal(routeFile('/robot/docs/a', off), 'docs/a.html');
  assert.equal(routeFile('/robot/docs/a/', off), 'docs/a/index.html');
  assert.equal(routeFile('/docs/a', {trailingSlash: undefined, baseUrl: '/'}), 'docs/a/index.html');
  assert.equal(routeFile('/robot/fr/docs/a', {trailingSlash: false, baseUrl: '/robot/fr/'}), 'docs/a.html');
});

test('heading ids are read from the article, entities decoded, the H1 has none', () => {
  const html = '<nav><h2 id="menu">Menu</h2></nav><article><h1>Title</h1>'
    + '<h2 class="anchor" id="über-straße--c--c">x</h2><p id="not-a-heading"></p>'
    + '<h3 id="a&amp;b&#x27;c">y</h3></article><footer><h4 id="foot">z</h4></footer>';
  assert.deepEqual(headingIds(html), ['über-straße--c--c', "a&b'c"]);
});

test('the manifest lists each doc with its version, locale, file and ids', async () => {
  const props = {
    siteDir: '/site', baseUrl: '/robot/fr/', routesPaths: ['/robot/fr/docs/intro', '/robot/fr/docs/1.0/intro'],
    siteConfig: {trailingSlash: false},
    i18n: {currentLocale: 'fr', defaultLocale: 'en', locales: ['en', 'fr']},
    plugins: [
      {name: 'docusaurus-plugin-content-pages', content: {}},
      {
        name: 'docusaurus-plugin-content-docs', options: {id: 'default'},
        content: {loadedVersions: [
          {versionName: 'current', label: 'Next', path: '/robot/fr/docs/', isLast: true,
            contentPath: '/site/docs', contentPathLocalized: '/site/i18n/fr/docusaurus-plugin-content-docs/current',
            docs: [{id: 'intro', source: '@site/i18n/fr/docusaurus-plugin-content-docs/current/intro.md',
              permalink: '/robot/fr/docs/intro', unlisted: false}]},
          {versionName: '1.0', label: '1.0', path: '/robot/fr/docs/1.0', isLast: false,
            contentPath: '/site/versioned_docs/version-1.0',
            contentPathLocalized: '/site/i18n/fr/docusaurus-plugin-content-docs/version-1.0',
            docs: [{id: 'intro', source: '@site/versioned_docs/version-1.0/intro.md',
              permalink: '/robot/fr/docs/1.0/intro', unlisted: true}]},
        ]},
      },
    ],
  };
  const pages = {'docs/intro.html': '<article><h2 id="étalonner">É</h2></article>'};
  const manifest = await buildManifest(props, async (file) => pages[file] ?? null);
  assert.equal(manifest.locale, 'fr');
  assert.deepEqual(manifest.versions.map((v) => [v.name, v.path]),
    [['current', '/robot/fr/docs'], ['1.0', '/robot/fr/docs/1.0']]);
  assert.deepEqual(manifest.docs.map((d) => [d.version, d.locale, d.file, d.localized, d.permalink, d.ids]), [
    ['current', 'fr', 'intro.md', true, '/robot/fr/docs/intro', ['étalonner']],
    ['1.0', 'fr', 'intro.md', false, '/robot/fr/docs/1.0/intro', null],
  ]);
  assert.equal(manifest.docs[1].unlisted, true);
  assert.equal(manifest.docs[0].source, 'i18n/fr/docusaurus-plugin-content-docs/current/intro.md');
});
