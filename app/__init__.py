"""Haven: social media and mobile phone safeguarding for UK schools."""
