"""`bookrec users`: accounts from the command line."""

from __future__ import annotations

import json

import typer

from bookrec.cli.common import console, database, out, settings, user_errors

app = typer.Typer(help="Accounts.", no_args_is_help=True, rich_markup_mode=None)


@app.command("create-admin")
@user_errors
def create_admin(
    email: str = typer.Option(..., "--email", help="The admin's email address"),
    password: str = typer.Option(
        ...,
        "--password",
        envvar="BOOKREC_ADMIN_PASSWORD",
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        help="At least 10 characters and hard to guess; prompted for when left out",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the new account as JSON"),
) -> None:
    """Create an admin account (fails, changing nothing, when the email is taken)."""
    from bookrec.accounts import service

    config = settings()
    with database(config) as session:
        user = service.register(
            session, service.Authenticator.of(config), email, password, role="admin"
        )
        created = {"user_id": user.user_id, "email": user.email, "role": user.role}
    if as_json:
        out.print_json(json.dumps(created))
    else:
        console.print(f"admin {created['email']} created (user {created['user_id']})")
