-- Content archiving: stop a content rewrite of `spans` the engine cannot apply (it would be retried forever).
KILL MUTATION WHERE database = currentDatabase() AND table = 'spans' AND mutation_id = {id:String} SYNC
