"""Reading a Docusaurus book: discovery, parsing, routes and anchors, chunking."""
