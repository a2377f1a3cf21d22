"""What the API returns for recommendation lists."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RecommendedBook(BaseModel):
    book_id: int = Field(description="The data set's book id")
    title: str
    authors: str
    score: float = Field(description="Higher is better; comparable within one list only")
    image_url: str | None = None
    reasons: list[str] | None = Field(
        None, description="Human-readable reasons, present when explain=true"
    )


class RecommendationList(BaseModel):
    strategy: str
    model_version: int = Field(description="The model version that made this list")
    items: list[RecommendedBook]
    experiment_id: int | None = Field(
        None, description="The running experiment this personal list belongs to, if any"
    )
    variant: str | None = Field(None, description="The reader's variant of that experiment")
