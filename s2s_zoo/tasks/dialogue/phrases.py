"""What the simulated user and bot say in the generated restaurant dialogues.

The bot speaks in fixed sentences (its reply is a function of the dialogue state, as in
bAbI-dialog), while the user draws every turn from many paraphrases, so a model has to
recognise intents and slot values rather than memorise strings. Templates hold one
``{v}`` for a slot value; no template contains a cuisine, location, price or party-size
word of its own, which keeps the slot a user turn sets unambiguous.
"""

from __future__ import annotations

SILENCE = "<SILENCE>"

# --- bot -----------------------------------------------------------------------------

BOT_GREET = "hello what can i help you with today"
BOT_ON_IT = "i'm on it"
BOT_ASK = {
    "cuisine": "any preference on a type of cuisine",
    "location": "where should it be",
    "size": "how many people would be in your party",
    "price": "which price range are you looking for",
}
BOT_SEARCHING = "ok let me look into some options for you"
BOT_MORE_UPDATES = "sure is there anything else to update"
BOT_PROPOSE = "what do you think of this option: {v}"
BOT_ANOTHER = "sure let me find another option for you"
BOT_RESERVE = "great let me do the reservation"
BOT_HERE_IT_IS = "here it is {v}"
BOT_ANYTHING_ELSE = "is there anything else i can help you with"
BOT_WELCOME = "you're welcome"

# --- user ----------------------------------------------------------------------------

GREETINGS = (
    "hi",
    "hello",
    "hey",
    "good morning",
    "good afternoon",
    "good evening",
    "hi there",
    "hello there",
    "hey there",
    "greetings",
    "hello bot",
    "hi again",
)

REQUEST_OPENERS = (
    "can you book a table",
    "may i have a table",
    "i'd like to book a table",
    "i would like a table",
    "can you make a restaurant reservation",
    "i'd like to reserve a table",
    "i am looking for a table",
    "could you find me a table",
    "please book a table",
    "book me a table",
    "i need a table",
    "could you reserve a table",
    "we'd like a table",
    "can i get a table",
)

# How a slot is mentioned inside a request ("can you book a table <phrase> <phrase>").
REQUEST_SLOT = {
    "cuisine": ("with {v} food", "with {v} cuisine", "serving {v} food", "for {v} food"),
    "location": ("in {v}", "somewhere in {v}", "located in {v}"),
    "size": ("for {v} people", "for {v} guests", "for a party of {v}", "for {v}"),
    "price": ("in a {v} price range", "at a {v} place", "somewhere {v}", "in the {v} range"),
}

# Answers to the bot's question about one slot.
ANSWER_SLOT = {
    "cuisine": (
        "with {v} food",
        "{v} food please",
        "i love {v} food",
        "{v} cuisine would be great",
        "i'd like {v}",
        "something {v}",
        "{v} please",
        "let's have {v} food",
        "i'm in the mood for {v}",
        "{v}",
    ),
    "location": (
        "{v} please",
        "in {v}",
        "somewhere in {v}",
        "{v} would be nice",
        "it should be in {v}",
        "{v}",
        "i'd prefer {v}",
        "let's say {v}",
        "anywhere in {v}",
    ),
    "size": (
        "we will be {v}",
        "for {v} people please",
        "{v} people",
        "there will be {v} of us",
        "a table for {v}",
        "{v}",
        "{v} guests",
        "party of {v}",
        "we are {v}",
    ),
    "price": (
        "i am looking for a {v} restaurant",
        "in a {v} price range please",
        "{v} please",
        "something {v}",
        "let's go with {v}",
        "a {v} one",
        "{v}",
        "{v} would be best",
        "i'd prefer {v}",
    ),
}

# Changing one slot after the api_call.
UPDATE_SLOT = {
    "cuisine": (
        "instead could it be with {v} food",
        "actually i would prefer {v} food",
        "can you make it {v} cuisine instead",
        "i changed my mind let's have {v} food",
    ),
    "location": (
        "instead could it be in {v}",
        "actually i would prefer {v}",
        "can you make it in {v} instead",
        "what about {v} instead",
        "let's move it to {v}",
    ),
    "size": (
        "instead could it be for {v} people",
        "actually we will be {v}",
        "make it {v} people instead",
        "there will be {v} of us after all",
    ),
    "price": (
        "instead could it be in a {v} price range",
        "actually i would prefer something {v}",
        "can you make it {v} instead",
        "let's go {v} instead",
    ),
}

NO_MORE_UPDATES = (
    "no",
    "no thanks",
    "that's all",
    "nothing else",
    "no that's it",
    "no that will be all",
    "nope",
)
REJECT = (
    "do you have something else",
    "no this does not work for me",
    "i don't like that",
    "not that one",
    "anything else",
    "what else do you have",
    "no thanks show me another",
    "i'd rather have something else",
    "hmm no",
    "can you suggest another",
)
ACCEPT = (
    "let's do it",
    "that looks great",
    "it's perfect",
    "sounds good",
    "i love that",
    "yes please",
    "perfect book it",
    "that works for me",
    "great choice",
    "ok let's go with that",
)
ASK_INFO = {
    "phone": (
        "do you have its phone number",
        "what is the phone number",
        "may i have the phone number",
        "can you give me its phone number",
        "how can i call them",
    ),
    "address": (
        "do you have its address",
        "what is the address",
        "may i have the address",
        "where is it exactly",
        "can you give me its address",
        "how do i get there",
    ),
}
BOOK_NAMED = (
    "may i have a table at {v}",
    "can you book {v} for me",
    "i'd like a table at {v}",
    "please reserve a table at {v}",
    "book a table at {v}",
)
THANKS = (
    "you rock",
    "thanks",
    "thank you",
    "that's great thanks",
    "perfect thank you",
    "awesome thanks",
    "thanks a lot",
    "great thank you",
)
GOODBYE = (
    "no thank you",
    "no thanks",
    "that's all",
    "no that's everything",
    "nothing else thanks",
    "that will be all",
)
