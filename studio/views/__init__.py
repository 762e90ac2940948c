"""Views of the studio: each module exposes create_view(state) and TITLE (sidebar/load are parts)."""
