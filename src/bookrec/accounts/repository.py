"""SQL of accounts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bookrec.accounts.models import User


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email)).one_or_none()


def user_by_id(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)
