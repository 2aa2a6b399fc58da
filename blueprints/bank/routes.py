from flask import Blueprint

bp = Blueprint("bank", __name__)
