"""Reading a Docusaurus site root (its config, versions and translations) without Node."""

from services.ingest.book.site.config import (
    CURRENT,
    ContentDir,
    DocsPlugin,
    I18n,
    SiteConfig,
    SiteOverrides,
    SiteRoutes,
    Unreadable,
    VersionOption,
    check_given_versions,
    find_config,
    is_site_root,
    parse_trailing_slash,
    read_site,
    site_routes,
    version_names,
    version_path,
    versions_known,
    with_given,
)

__all__ = [
    "CURRENT", "ContentDir", "DocsPlugin", "I18n", "SiteConfig", "SiteOverrides", "SiteRoutes", "Unreadable",
    "VersionOption", "check_given_versions", "find_config", "is_site_root", "parse_trailing_slash", "read_site",
    "site_routes", "version_names", "version_path", "versions_known", "with_given",
]
