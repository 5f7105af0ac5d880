from supporters import create_app

app = create_app()
