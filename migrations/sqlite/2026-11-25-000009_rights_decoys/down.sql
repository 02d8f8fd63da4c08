DROP TABLE rights_decoys;
