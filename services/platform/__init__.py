"""What every domain leans on: phone numbers, checked URLs, waiting, health, simulator faults."""
