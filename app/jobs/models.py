"""When each periodic job last ran, so that one run happens per interval across all workers, and
the named leases only one worker holds at a time."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime


class JobRun(SQLModel, table=True):
    __tablename__ = "job_run"

    name: str = Field(primary_key=True, max_length=64)
    last_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str = Field(default="", max_length=200)
    lease_holder: str | None = Field(default=None, max_length=200)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
