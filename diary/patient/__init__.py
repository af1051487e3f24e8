"""The participant's diary pages."""

from flask import Blueprint

bp = Blueprint("patient", __name__)
