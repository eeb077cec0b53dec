"""The admin's static files, served by WhiteNoise: collected ones (STATIC_ROOT) where collectstatic ran (the image
does, at build time), and straight from the apps otherwise (WHITENOISE_USE_FINDERS), as under `make run`."""

import os

from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFiles(WhiteNoiseMiddleware):
    """WhiteNoiseMiddleware, minus its "No directory at: STATIC_ROOT" warning at every start of a checkout where
    collectstatic never ran: with the finders on, nothing is missing then."""

    def add_files(self, root, prefix=None):
        if root == self.static_root and self.use_finders and not os.path.isdir(root):
            return
        super().add_files(root, prefix)
