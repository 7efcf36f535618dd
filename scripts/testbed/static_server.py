"""Serve NetBox's collected static files for the test bed.

gunicorn serves no static files and NetBox (DEBUG off) does not either, so
the test bed points NetBox's static URL (STORAGES["staticfiles"] base_url in
configuration.py) at this small server. It serves only the files under the
given directory, at /static/, with a CORS header so fonts load in pages of
other origins (NetBox's own, and the toolkit page that links NetBox's style).

Usage: static_server.py DIRECTORY HOST PORT   (standard library only)
"""

import functools
import http.server
import sys


class StaticHandler(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, path):
        # Only /static/... maps to files; everything else maps to nothing.
        prefix = "/static/"
        if not path.startswith(prefix):
            return "/nonexistent"
        return super().translate_path("/" + path[len(prefix):])

    def list_directory(self, path):
        self.send_error(404, "no directory listings")
        return None

    def end_headers(self):
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "public, max-age=3600")
        super().end_headers()

    def log_message(self, format, *args):
        pass  # quiet: every page loads dozens of files


def main():
    directory, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    handler = functools.partial(StaticHandler, directory=directory)
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    print(f"serving {directory} at http://{host}:{port}/static/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
