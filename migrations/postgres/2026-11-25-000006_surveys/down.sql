DROP TABLE survey_anonymous_answers;
DROP TABLE survey_invitations;
DROP TABLE surveys;
