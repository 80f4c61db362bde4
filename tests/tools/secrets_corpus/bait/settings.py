"""Django settings: every secret comes from the environment."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "PASSWORD": os.environ.get("DB_PASSWORD", ""),
        "HOST": os.environ.get("DB_HOST", "localhost"),
    }
}
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
GITEA_TOKEN = os.getenv("GITEA_TOKEN")
api_key = settings.API_KEY
token = request.headers.get("Authorization", "").removeprefix("Bearer ")
password = form.cleaned_data["password"]
secret_hash = hashlib.sha256(password.encode()).hexdigest()
if token == expected_token:
    pass
token_type = "bearer"
max_tokens = 4096
password_reset_timeout = 259200
