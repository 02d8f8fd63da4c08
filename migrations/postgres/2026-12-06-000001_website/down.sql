DROP TABLE visitor_links;
DROP TABLE visitor_choices;
DROP TABLE banners;
