// Typed imsg objects (../shared/reference/imsg-rpc.md §4) and their validation. CONTRACT for other modules.

export interface ImsgAttachment {
  filename: string;
  transferName: string;
  uti: string;
  mimeType: string;
  totalBytes: number;
  isSticker: boolean;
  originalPath: string;
  missing: boolean;
}

/** A `message` notification's message, normalised to camelCase; optional strings stay undefined. */
export interface ImsgMessage {
  id: number; // ROWID, the watch cursor
  chatId: number; // 0 when not joined to a chat
  guid: string;
  sender: string;
  senderName?: string;
  isFromMe: boolean;
  text: string;
  createdAt: string; // ISO
  attachments: ImsgAttachment[];
  replyToGuid?: string;
  replyToText?: string;
  replyToSender?: string;
  threadOriginatorGuid?: string;
  destinationCallerId?: string;
  chatIdentifier: string;
  chatGuid: string;
  chatName: string;
  participants: string[];
  isGroup: boolean;
  isReaction?: boolean;
  reactionType?: string;
  reactionEmoji?: string;
  isReactionAdd?: boolean;
  reactedToGuid?: string;
}

export interface ImsgChat {
  id: number;
  identifier: string;
  guid: string;
  name: string;
  service: string;
  lastMessageAt: string;
  participants: string[];
  isGroup: boolean;
  contactName?: string;
}
