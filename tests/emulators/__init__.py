"""Small in-repo emulators of provider HTTP APIs, reached through the real SDKs on 127.0.0.1."""
