from flask import Blueprint

bp = Blueprint("partner", __name__)
