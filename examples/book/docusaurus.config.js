// The sample book as a real Docusaurus site (tests/test_docusaurus_build.py builds it).
// A base URL other than "/" and trailingSlash: false are on purpose: citations must follow them.
// The current docs stay the last version (served at /robot/docs/), 1.0 is at /robot/docs/1.0/,
// French at /robot/fr/docs/. The npm2yarn plugin shows a ```bash npm2yarn block as a tab per package
// manager; ingest shows those tabs too.

import npm2yarn from '@docusaurus/remark-plugin-npm2yarn';

/** @type {import('@docusaurus/types').Config} */
export default {
  title: 'Build a Home Robot',
  tagline: 'From an empty workbench to a robot that drives itself home',
  url: 'https://robot.example.com',
  baseUrl: '/robot/',
  trailingSlash: false,
  onBrokenLinks: 'throw',
  i18n: {
    defaultLocale: 'en',
    locales: ['en', 'fr'],
  },
  presets: [
    [
      'classic',
      {
        docs: {
          routeBasePath: 'docs',
          remarkPlugins: [[npm2yarn, {sync: true}]],
          lastVersion: 'current',
          versions: {
            current: {label: '2.x'},
          },
        },
        blog: false,
      },
    ],
  ],
  plugins: [
    ['docusaurus-plugin-lectern', {url: 'http://127.0.0.1:8080', book: 'default'}],
  ],
  themeConfig: {
    prism: {
      // The default entry, and one of the site's own: code shows without the comment lines.
      magicComments: [
        {
          className: 'theme-code-block-highlighted-line',
          line: 'highlight-next-line',
          block: {start: 'highlight-start', end: 'highlight-end'},
        },
        {className: 'code-block-error-line', line: 'This will error'},
      ],
    },
    navbar: {
      title: 'Build a Home Robot',
      items: [
        {type: 'docsVersionDropdown', position: 'right'},
        {type: 'localeDropdown', position: 'right'},
      ],
    },
  },
};
